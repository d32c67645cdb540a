package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHostileIDs: a client id with a NUL is refused on every collection
// path over HTTP, with the field named: /v1/collect (400), the Measurement
// Protocol (400, and the debug endpoint's validation messages) and gtag
// (400).
func TestHostileIDs(t *testing.T) {
	skipShort(t)
	addr := freeAddr(t)
	srv := startServer(t, t.TempDir(), addr)
	env := demoKeys(t, srv.stdout.String())
	base, pid := "http://"+addr, env["SEXTANT_PROPERTY_ID"]
	code, body := postJSON(t, base+"/v1/collect", env["SEXTANT_WRITE_KEY"], `{"clientId":"c\u0000","events":[{"name":"page_view"}]}`)
	if code != 400 || !strings.Contains(fmt.Sprint(body), "clientId") || !strings.Contains(fmt.Sprint(body), "control character") {
		t.Errorf("/v1/collect: %d %v", code, body)
	}
	code, key := call(t, "POST", base+"/v1/properties/"+pid+"/keys", env["SEXTANT_ADMIN_KEY"], `{"scope":"KEY_SCOPE_MEASUREMENT"}`)
	secret := str(key, "key", "secret")
	_, prop := call(t, "GET", base+"/v1/properties/"+pid, env["SEXTANT_ADMIN_KEY"], "")
	mid := str(prop, "property", "measurementId")
	if code != 200 || secret == "" || mid == "" {
		t.Fatalf("measurement secret %d %v, property %v", code, key, prop)
	}
	post := func(url, ctype, body string) (int, string) {
		resp, err := http.Post(url, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{{"/mp/collect", 400}, {"/debug/mp/collect", 200}} {
		code, b := post(base+tc.path+"?measurement_id="+mid+"&api_secret="+secret, "application/json", `{"client_id":"c\u0000","events":[{"name":"page_view"}]}`)
		if code != tc.status || !strings.Contains(b, `"fieldPath":"client_id"`) || !strings.Contains(b, "control character") {
			t.Errorf("%s: %d %s", tc.path, code, b)
		}
	}
	code, b := post(base+"/g/collect?v=2&tid="+mid+"&cid=c%00&en=page_view", "text/plain", "")
	if code != 400 || !strings.Contains(b, `"fieldPath":"clientId"`) {
		t.Errorf("/g/collect: %d %s", code, b)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	adminv1 "github.com/sextant-analytics/sextant/gen/sextant/admin/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/admin/v1/adminv1connect"
	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	"github.com/sextant-analytics/sextant/gen/sextant/collect/v1/collectv1connect"
	"github.com/sextant-analytics/sextant/pkg/property"
)

// call sends a JSON request and returns the status and the decoded answer.
func call(t *testing.T, method, url, key, body string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s answered %d %q: %v", method, url, resp.StatusCode, b, err)
	}
	return resp.StatusCode, m
}

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[p]
	}
	s, _ := v.(string)
	return s
}

const oneEvent = `{"clientId":"c1","events":[{"name":"page_view","params":{"page_location":"https://shop.example/"}}]}`

// TestAdminAPI manages properties and keys over REST, Connect and the CLI
// on a running server: every call, its errors with their HTTP codes and
// fields, and keys that work or stop working at once.
func TestAdminAPI(t *testing.T) {
	skipShort(t)
	addr := freeAddr(t)
	srv := startServer(t, t.TempDir(), addr)
	env := demoEnv(t, srv.stdout.String())
	var admin, read string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "SEXTANT_ADMIN_KEY":
			admin = v
		case "SEXTANT_READ_KEY":
			read = v
		}
	}
	base := "http://" + addr

	// Create: the answer carries both keys' secrets, which work at once.
	code, created := call(t, "POST", base+"/v1/properties", admin, `{"displayName":"My shop","timeZone":"Europe/Paris","allowedOrigins":["https://shop.example"]}`)
	if code != 200 || str(created, "property", "displayName") != "My shop" || str(created, "writeKey", "scope") != "KEY_SCOPE_WRITE" {
		t.Fatalf("create: %d %v", code, created)
	}
	id := str(created, "property", "propertyId")
	write, readNew := str(created, "writeKey", "secret"), str(created, "readKey", "secret")
	if code, body := postJSON(t, base+"/v1/collect", write, oneEvent); code != 200 {
		t.Fatalf("collect with the new write key: %d %v", code, body)
	}
	if code, body := postJSON(t, base+"/v1/properties/"+id+":runReport", readNew, `{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"today","endDate":"today"}]}`); code != 200 {
		t.Fatalf("report with the new read key: %d %v", code, body)
	}

	// Errors: the HTTP code, and the field at fault.
	for _, tc := range []struct {
		name, method, path, key, body string
		code                          int
		field                         string
	}{
		{"no key", "POST", "/v1/properties", "", `{"displayName":"x"}`, 401, ""},
		{"read key", "POST", "/v1/properties", read, `{"displayName":"x"}`, 403, ""},
		{"write key", "GET", "/v1/properties", write, "", 403, ""},
		{"no name", "POST", "/v1/properties", admin, `{"timeZone":"UTC"}`, 400, "property.displayName"},
		{"bad time zone", "POST", "/v1/properties", admin, `{"displayName":"x","timeZone":"Mars/Base"}`, 400, "property.timeZone"},
		{"bad origin", "POST", "/v1/properties", admin, `{"displayName":"x","allowedOrigins":["shop.example"]}`, 400, "property.allowedOrigins[0]"},
		{"bad update", "PATCH", "/v1/properties/" + id, admin, `{"timeZone":"Nowhere"}`, 400, "property.timeZone"},
		{"unknown property", "GET", "/v1/properties/1000000001", admin, "", 404, ""},
		{"unknown key", "POST", "/v1/properties/" + id + "/keys/0123456789abcdef:revoke", admin, `{}`, 404, ""},
		{"bad scope", "POST", "/v1/properties/" + id + "/keys", admin, `{"scope":"KEY_SCOPE_UNSPECIFIED"}`, 400, "scope"},
		{"bad grace", "POST", "/v1/properties/" + id + "/keys/" + str(created, "writeKey", "keyId") + ":rotate", admin, `{"gracePeriod":"9999999s"}`, 400, "gracePeriod"},
		{"bad page token", "GET", "/v1/properties?pageToken=nope", admin, "", 400, "pageToken"},
		{"bad page size", "GET", "/v1/properties?pageSize=5000", admin, "", 400, "pageSize"},
	} {
		code, body := call(t, tc.method, base+tc.path, tc.key, tc.body)
		if code != tc.code || tc.field != "" && !strings.Contains(fmt.Sprint(body["details"]), "field:"+tc.field+" ") {
			t.Errorf("%s: %d %v, want %d naming %s", tc.name, code, body, tc.code, tc.field)
		}
	}

	// Update: PATCH sets what the body names (the mask is inferred).
	code, upd := call(t, "PATCH", base+"/v1/properties/"+id, admin, `{"timeZone":"Asia/Tokyo"}`)
	if code != 200 || str(upd, "property", "timeZone") != "Asia/Tokyo" || str(upd, "property", "displayName") != "My shop" {
		t.Fatalf("update: %d %v", code, upd)
	}
	code, got := call(t, "GET", base+"/v1/properties/"+id, admin, "")
	if code != 200 || str(got, "property", "timeZone") != "Asia/Tokyo" || fmt.Sprint(got["property"].(map[string]any)["allowedOrigins"]) != "[https://shop.example]" {
		t.Fatalf("get: %d %v", code, got)
	}

	// Keys: rotation with a grace period keeps both, revocation stops one.
	writeID := str(created, "writeKey", "keyId")
	code, rot := call(t, "POST", base+"/v1/properties/"+id+"/keys/"+writeID+":rotate", admin, `{"gracePeriod":"3600s"}`)
	if code != 200 || str(rot, "oldKey", "state") != "KEY_STATE_EXPIRING" || str(rot, "key", "secret") == "" {
		t.Fatalf("rotate: %d %v", code, rot)
	}
	write2 := str(rot, "key", "secret")
	for _, k := range []string{write, write2} {
		if code, body := postJSON(t, base+"/v1/collect", k, oneEvent); code != 200 {
			t.Fatalf("collect during the grace period: %d %v", code, body)
		}
	}
	code, rev := call(t, "POST", base+"/v1/properties/"+id+"/keys/"+writeID+":revoke", admin, `{}`)
	if code != 200 || str(rev, "key", "state") != "KEY_STATE_REVOKED" {
		t.Fatalf("revoke: %d %v", code, rev)
	}
	if code, body := postJSON(t, base+"/v1/collect", write, oneEvent); code != 401 || !strings.Contains(fmt.Sprint(body["message"]), "revoked") {
		t.Fatalf("collect with a revoked key: %d %v", code, body)
	}
	code, keys := call(t, "GET", base+"/v1/properties/"+id+"/keys?showRevoked=true", admin, "")
	if n := len(keys["keys"].([]any)); code != 200 || n != 3 {
		t.Fatalf("keys: %d, %d listed, want 3: %v", code, n, keys)
	}
	code, keys = call(t, "GET", base+"/v1/properties/"+id+"/keys", admin, "")
	if n := len(keys["keys"].([]any)); code != 200 || n != 2 {
		t.Fatalf("active keys: %d, %d listed, want 2: %v", code, n, keys)
	}

	// Connect and the CLI reach the same service.
	client := adminv1connect.NewAdminServiceClient(http.DefaultClient, base)
	req := connect.NewRequest(&adminv1.GetPropertyRequest{PropertyId: "1000000001"})
	req.Header().Set("Authorization", "Bearer "+admin)
	if _, err := client.GetProperty(context.Background(), req); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("Connect GetProperty of an unknown property: %v", err)
	}
	cliEnv := append(embeddedEnv(), "SEXTANT_SERVER="+base, "SEXTANT_ADMIN_KEY="+admin)
	if out := runCLI(t, cliEnv, "property", "list"); !strings.Contains(out, id+"\tAsia/Tokyo\tMy shop") || !strings.Contains(out, "\tDemo") {
		t.Fatalf("property list:\n%s", out)
	}
	if out := runCLI(t, cliEnv, "property", "update", id, "--name", "Renamed", "--allowed-origins", ""); !strings.Contains(out, id+"\tAsia/Tokyo\tRenamed\tmeasurement id G-") {
		t.Fatalf("property update:\n%s", out)
	}
	out := runCLI(t, cliEnv, "property", "key", "create", id, "--scope", "read")
	secret := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n"):])
	if !strings.HasPrefix(secret, "sxr_") {
		t.Fatalf("key create printed:\n%s", out)
	}
	if out := runCLI(t, cliEnv, "property", "key", "revoke", id, property.KeyID(secret)); !strings.Contains(out, "revoked") {
		t.Fatalf("key revoke:\n%s", out)
	}

	// Delete: the property's keys stop at once.
	if code, body := call(t, "DELETE", base+"/v1/properties/"+id, admin, ""); code != 200 {
		t.Fatalf("delete: %d %v", code, body)
	}
	if code, _ := postJSON(t, base+"/v1/collect", write2, oneEvent); code != 401 {
		t.Fatalf("collect for a deleted property: %d", code)
	}
	if code, _ := call(t, "GET", base+"/v1/properties/"+id, admin, ""); code != 404 {
		t.Fatalf("get a deleted property: %d", code)
	}
}

// TestRevokedKeyRefusedEverywhere: on the distributed stack, a key revoked
// through the gateway's admin API is refused within a second by the
// gateway, by each collect copy and by insights, all of which had it
// cached.
func TestRevokedKeyRefusedEverywhere(t *testing.T) {
	needStack(t)
	s := newStack(t, 2)
	admin := adminKey(t, s.env)
	c1, c2 := s.start(t, "--services=collect"), s.start(t, "--services=collect")
	in := s.start(t, "--services=insights")
	gw := s.start(t, "--services=gateway", "--collect-backends="+c1.addr+","+c2.addr, "--insights-backends="+in.addr)

	code, created := call(t, "POST", "http://"+gw.addr+"/v1/properties", admin, `{"displayName":"Revocation"}`)
	if code != 200 {
		t.Fatalf("create through the gateway: %d %v", code, created)
	}
	id := str(created, "property", "propertyId")
	write, read := str(created, "writeKey", "secret"), str(created, "readKey", "secret")

	// Each check uses the key on one process; all must pass before the
	// revocation (which fills every cache) and fail after it.
	collectOn := func(addr, key string) error {
		c := collectv1connect.NewCollectServiceClient(http.DefaultClient, "http://"+addr, connect.WithGRPC())
		req := connect.NewRequest(&collectv1.CollectRequest{ClientId: "c", Events: []*collectv1.Event{{Name: "page_view"}}})
		req.Header().Set("Authorization", "Bearer "+key)
		_, err := c.Collect(context.Background(), req)
		return err
	}
	reportOn := func(addr, key string) error {
		code, body := postJSON(t, "http://"+addr+"/v1/properties/"+id+":runReport", key, `{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"today","endDate":"today"}]}`)
		if code != 200 {
			return fmt.Errorf("%d %v", code, body)
		}
		return nil
	}
	checks := map[string]func() error{
		"gateway collect":   func() error { return collectOn(gw.addr, write) },
		"collect 1":         func() error { return collectOn(c1.addr, write) },
		"collect 2":         func() error { return collectOn(c2.addr, write) },
		"gateway reports":   func() error { return reportOn(gw.addr, read) },
		"insights directly": func() error { return reportOn(in.addr, read) },
	}
	for name, check := range checks {
		if err := check(); err != nil {
			t.Fatalf("%s before the revocation: %v", name, err)
		}
	}
	for _, key := range []string{write, read} {
		if code, body := call(t, "POST", "http://"+gw.addr+"/v1/properties/"+id+"/keys/"+property.KeyID(key)+":revoke", admin, `{}`); code != 200 {
			t.Fatalf("revoke: %d %v", code, body)
		}
	}
	revoked := time.Now()
	pending := map[string]bool{}
	for name := range checks {
		pending[name] = true
	}
	for len(pending) > 0 {
		for name := range pending {
			err := checks[name]()
			var ce *connect.Error
			if err != nil && (errors.As(err, &ce) && ce.Code() == connect.CodeUnauthenticated || strings.HasPrefix(err.Error(), "401 ")) {
				t.Logf("%s refuses the revoked key after %v", name, time.Since(revoked).Round(time.Millisecond))
				delete(pending, name)
			}
		}
		if time.Since(revoked) > 1500*time.Millisecond {
			t.Fatalf("after %v these still accept a revoked key: %v", time.Since(revoked), pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

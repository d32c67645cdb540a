package main

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-analytics/sextant/pkg/seal"
)

// TestNoIPStored: visitors' addresses locate them (country, region, city)
// and are never stored. Hits sent with addresses through /v1/collect (a
// proxy's X-Forwarded-For and the body's ipOverride) and the Measurement
// Protocol (ip_override) are counted, and then no key or value of the
// event log, the dead letters or the read models holds any of the
// addresses.
func TestNoIPStored(t *testing.T) {
	skipShort(t)
	dir, addr := t.TempDir(), freeAddr(t)
	srv := startServer(t, dir, addr)
	env := demoKeys(t, srv.stdout.String())
	ips := sendIPHits(t, "http://"+addr, keys{PropertyID: env["SEXTANT_PROPERTY_ID"], WriteKey: env["SEXTANT_WRITE_KEY"], ReadKey: env["SEXTANT_READ_KEY"]}, env["SEXTANT_ADMIN_KEY"])
	srv.stop(t)

	// The log is sealed: its bytes hold nothing readable, and the events
	// it holds, opened with their keys, no address either.
	recs, opener := embeddedLog(t, dir)
	control := 0
	for _, rec := range recs {
		if !seal.Sealed(&rec) {
			t.Errorf("record %d@%d is not sealed", rec.Partition, rec.Offset)
		}
		ev, err := opener.Open(t.Context(), nil, &rec)
		if err != nil {
			t.Fatalf("open record %d@%d: %v", rec.Partition, rec.Offset, err)
		}
		if bytes.Contains(ev, []byte(storedControl)) {
			control++
		}
		for _, ip := range ips {
			if bytes.Contains(ev, []byte(ip)) {
				t.Errorf("the event of record %d@%d holds %s", rec.Partition, rec.Offset, ip)
			}
		}
	}
	scanned := 0
	for _, sub := range []string{"log", "deadletters", "views"} {
		db, err := pebble.Open(filepath.Join(dir, sub), &pebble.Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("opening %s: %v", sub, err)
		}
		it, err := db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
			scanned++
			for _, ip := range ips {
				if bytes.Contains(it.Key(), []byte(ip)) || bytes.Contains(it.Value(), []byte(ip)) {
					t.Errorf("%s holds %s under key %q", sub, ip, it.Key())
				}
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	if scanned < 10 || control == 0 {
		t.Fatalf("scanned %d entries, %d events holding the page URL sent: the scan would not find an address stored as the URL is", scanned, control)
	}
}

// sendIPHits sends two hits with addresses to base (a server or gateway)
// for property k: one through /v1/collect (X-Forwarded-For, ipOverride),
// one through the Measurement Protocol (X-Forwarded-For, ip_override,
// with a measurement secret made with adminKey), waits until both are
// counted and returns the addresses.
// storedControl is a string the hits of sendIPHits carry that the event
// log does store (the page URL): a scan that does not find it would not
// find an address either.
const storedControl = "https://a.example/"

func sendIPHits(t *testing.T, base string, k keys, adminKey string) []string {
	t.Helper()
	pid := k.PropertyID
	ips := []string{"203.0.113.9", "198.51.100.23", "203.0.113.10", "198.51.100.24"}

	req, _ := http.NewRequest("POST", base+"/v1/collect", strings.NewReader(
		`{"clientId":"c1","ipOverride":"`+ips[1]+`","events":[{"name":"page_view","params":{"page_location":"https://a.example/"}}]}`))
	req.Header.Set("Authorization", "Bearer "+k.WriteKey)
	req.Header.Set("X-Forwarded-For", ips[0]) // the peer, 127.0.0.1, is a trusted proxy by default
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/v1/collect: %d", resp.StatusCode)
	}
	code, key := call(t, "POST", base+"/v1/properties/"+pid+"/keys", adminKey, `{"scope":"KEY_SCOPE_MEASUREMENT"}`)
	if code != 200 {
		t.Fatalf("measurement secret: %d %v", code, key)
	}
	_, prop := call(t, "GET", base+"/v1/properties/"+pid, adminKey, "")
	mp := fmt.Sprintf("%s/mp/collect?measurement_id=%s&api_secret=%s", base, str(prop, "property", "measurementId"), str(key, "key", "secret"))
	req, _ = http.NewRequest("POST", mp, strings.NewReader(`{"client_id":"c2","ip_override":"`+ips[3]+`","events":[{"name":"page_view"}]}`))
	req.Header.Set("X-Forwarded-For", ips[2])
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("/mp/collect: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, r := postJSON(t, base+"/v1/properties/"+pid+":runReport", k.ReadKey,
			`{"metrics":[{"name":"eventCount"}],"dateRanges":[{"startDate":"today","endDate":"today"}]}`)
		if strings.Contains(fmt.Sprint(r["rows"]), "value:2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two hits were not counted: %v", r)
		}
	}
	return ips
}

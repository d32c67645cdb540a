package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sextant-analytics/sextant/gen/sextant/insights/v1/insightsv1connect"
	"github.com/sextant-analytics/sextant/pkg/eventlog"
	"github.com/sextant-analytics/sextant/pkg/seal"
)

// The users of the deletion tests: what they send is unique enough to be
// looked for in the stores' bytes.
const (
	goneClient = "deleted-client-5f1c0e"
	gonePage   = "/gone-secret-page-8d2a"
	goneUser   = "deleted-user-77b3c1"
	userPage   = "/user-secret-page-1e9f"
	keptClient = "kept-client-2c4d"
	keptPage   = "/kept-page"
)

// sendDeletionHits sends the hits of the three users (3 + 2 + 1 page views)
// and waits until they are counted.
func sendDeletionHits(t *testing.T, base string, k keys, c insightsv1connect.InsightsServiceClient) {
	t.Helper()
	for _, b := range []string{
		`{"clientId":"` + goneClient + `","events":[` + strings.Repeat(`{"name":"page_view","params":{"page_location":"https://shop.example`+gonePage+`?email=gone@example.com"}},`, 2) + `{"name":"page_view","params":{"page_location":"https://shop.example` + gonePage + `?email=gone@example.com"}}]}`,
		`{"clientId":"` + keptClient + `","events":[{"name":"page_view","params":{"page_location":"https://shop.example` + keptPage + `"}},{"name":"page_view","params":{"page_location":"https://shop.example` + keptPage + `"}}]}`,
		`{"clientId":"another-client-of-the-user","userId":"` + goneUser + `","events":[{"name":"page_view","params":{"page_location":"https://shop.example` + userPage + `"}}]}`,
	} {
		if code, r := postJSON(t, base+"/v1/collect", k.WriteKey, b); code != 200 {
			t.Fatalf("/v1/collect: %d %v", code, r)
		}
	}
	waitEvents(t, c, k, map[string]string{gonePage: "3", keptPage: "2", userPage: "1"}, 30*time.Second)
}

// deleteUsers deletes the client and the user through the REST API (and
// someone unknown), then waits until reports no longer count them.
func deleteUsers(t *testing.T, base string, k keys, admin string, c insightsv1connect.InsightsServiceClient) {
	t.Helper()
	url := base + "/v1/properties/" + k.PropertyID + "/userDeletions"
	for _, tc := range []struct {
		body  string
		found bool
	}{
		{`{"clientId":"` + goneClient + `"}`, true},
		{`{"clientId":"nobody-ever-seen"}`, false},
	} {
		code, r := postJSON(t, url, admin, tc.body)
		if code != 200 || r["deletionRequestTime"] == nil {
			t.Fatalf("delete %s: %d %v", tc.body, code, r)
		}
		if found := r["eventsFound"] == true; found != tc.found {
			t.Errorf("delete %s: eventsFound %v, want %v", tc.body, found, tc.found)
		}
	}
	// The user id through the CLI.
	if out := runCLI(t, os.Environ(), "property", "delete-user", k.PropertyID, "--user-id", goneUser, "--server", base, "--admin-key", admin); !strings.HasPrefix(out, "deleted:") {
		t.Errorf("property delete-user printed %q", out)
	}
	// Bad requests name the field at fault.
	if code, r := postJSON(t, url, admin, `{}`); code != 400 || !strings.Contains(fmt.Sprint(r), "client_id") {
		t.Errorf("a deletion naming nobody: %d %v", code, r)
	}
	if code, r := postJSON(t, url, k.ReadKey, `{"clientId":"x"}`); code != 403 && code != 401 {
		t.Errorf("a deletion with a read key: %d %v", code, r)
	}
	began := time.Now()
	waitEvents(t, c, k, map[string]string{keptPage: "2"}, 90*time.Second)
	t.Logf("reports stopped counting the deleted users %.1fs after the deletions", time.Since(began).Seconds())
	// The rebuild took the active version's place, and the version it
	// rebuilt is deleted with its read model.
	var versions []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, r := call(t, "GET", base+"/v1/projections", admin, "")
		versions = versions[:0]
		ps, _ := r["projections"].([]any)
		for _, p := range ps {
			if m, ok := p.(map[string]any); ok {
				versions = append(versions, fmt.Sprint(m["version"], "/", m["state"]))
			}
		}
		if len(versions) == 1 && strings.HasPrefix(versions[0], "v1+r") && strings.HasSuffix(versions[0], "ACTIVE") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("versions %v; want only the active rebuild of v1", versions)
		}
	}
}

// checkNotReadable fails when b holds anything the deleted users sent.
func checkNotReadable(t *testing.T, where string, b []byte) {
	t.Helper()
	for _, s := range []string{goneClient, gonePage, "gone@example.com", goneUser, userPage} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds %q", where, s)
		}
	}
}

// checkRecords checks the log's records after the deletions: the deleted
// users' events do not open (their keys are gone), the kept user's do.
func checkRecords(t *testing.T, recs []eventlog.Record, o *seal.Opener) {
	t.Helper()
	kept, gone := 0, 0
	for _, rec := range recs {
		checkNotReadable(t, fmt.Sprintf("record %d@%d", rec.Partition, rec.Offset), append(append(bytes.Clone(rec.Key), rec.Value...), fmt.Sprint(rec.Headers)...))
		ev, err := o.Open(t.Context(), nil, &rec)
		switch {
		case errors.Is(err, seal.ErrShredded):
			gone++
		case err != nil:
			t.Errorf("record %d@%d: %v", rec.Partition, rec.Offset, err)
		case bytes.Contains(ev, []byte(keptPage)):
			kept++
		default:
			checkNotReadable(t, fmt.Sprintf("the event of record %d@%d", rec.Partition, rec.Offset), ev)
		}
	}
	// A batch is a record: the deleted client's and the deleted user's
	// did not open, the kept client's did.
	if gone != 2 || kept != 1 {
		t.Errorf("%d records opened with the kept page and %d did not open; want 1 and 2", kept, gone)
	}
}

// TestUserDeletion: users deleted through the admin API (by client id and
// by user id) stop being counted once the rebuild replaced the active
// version, their events in the log no longer open, and no file of the
// event log and no entry of the read models holds what they sent.
func TestUserDeletion(t *testing.T) {
	skipShort(t)
	dir, addr := t.TempDir(), freeAddr(t)
	srv := startServer(t, dir, addr, "--deletion-rebuild-delay", "0s")
	env := demoKeys(t, srv.stdout.String())
	k := keys{PropertyID: env["SEXTANT_PROPERTY_ID"], WriteKey: env["SEXTANT_WRITE_KEY"], ReadKey: env["SEXTANT_READ_KEY"]}
	base := "http://" + addr
	c := insightsv1connect.NewInsightsServiceClient(http.DefaultClient, base)
	sendDeletionHits(t, base, k, c)
	deleteUsers(t, base, k, env["SEXTANT_ADMIN_KEY"], c)
	srv.stop(t)

	recs, o := embeddedLog(t, dir)
	checkRecords(t, recs, o)
	// Every file of the event log, byte for byte.
	files := 0
	_ = filepath.WalkDir(filepath.Join(dir, "log"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		checkNotReadable(t, path, b)
		return nil
	})
	if files == 0 {
		t.Fatal("the event log has no files")
	}
	// Every entry of the read models and the dead letters.
	entries, control := 0, 0
	for _, sub := range []string{"views", "deadletters"} {
		db, err := pebble.Open(filepath.Join(dir, sub), &pebble.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		it, err := db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
			entries++
			if bytes.Contains(it.Key(), []byte(keptClient)) || bytes.Contains(it.Value(), []byte(keptClient)) {
				control++
			}
			checkNotReadable(t, fmt.Sprintf("%s entry %q", sub, it.Key()), append(bytes.Clone(it.Key()), it.Value()...))
		}
		_ = it.Close()
		db.Close()
	}
	if control == 0 {
		t.Fatalf("no entry of %d holds the kept client's id: the scan would not find the deleted ones", entries)
	}
}

// TestUserDeletionDistributed is TestUserDeletion on Kafka, Cassandra and
// Redis: every record of the topic and every cell of the keyspace is read.
func TestUserDeletionDistributed(t *testing.T) {
	needStack(t)
	s := newStack(t, 2)
	p := s.start(t, "--deletion-rebuild-delay", "0s")
	out := runCLI(t, s.env, "admin-key", "create")
	_, admin, ok := strings.Cut(strings.TrimSpace(out), "SEXTANT_ADMIN_KEY=")
	if !ok {
		t.Fatalf("admin-key create printed %q", out)
	}
	base := "http://" + p.addr
	c := insightsv1connect.NewInsightsServiceClient(http.DefaultClient, base)
	sendDeletionHits(t, base, s.keys, c)
	deleteUsers(t, base, s.keys, admin, c)
	p.stop(t)

	checkRecords(t, kafkaRecords(t, s.topic), stackOpener(t, s))
	control := 0
	rows := cassandraCells(t, s.keyspace, func(where string, b []byte) {
		if bytes.Contains(b, []byte(keptClient)) {
			control++
		}
		checkNotReadable(t, where, b)
	})
	if control == 0 {
		t.Fatalf("no cell of %d rows holds the kept client's id: the scan would not find the deleted ones", rows)
	}
}

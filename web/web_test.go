package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTagServed(t *testing.T) {
	resp := get(t, "/sextant.js")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /sextant.js: %d", resp.StatusCode)
	}
	for h, want := range map[string]string{
		"Content-Type":           "text/javascript; charset=utf-8",
		"Cache-Control":          "public, max-age=300",
		"X-Content-Type-Options": "nosniff",
		"Content-Encoding":       "",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	b := body(t, resp)
	if !bytes.Equal(b, Tag()) {
		t.Fatal("served tag differs from Tag()")
	}
	for _, s := range []string{"/v1/collect?key=", "sendBeacon", "ga_session_id", "first_visit", "session_start", "user_engagement", "pushState", "text/plain"} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("the tag does not contain %q", s)
		}
	}
	if bytes.Contains(b, []byte("\n//")) || bytes.Contains(b, []byte("\n  ")) {
		t.Error("the served tag still has comment lines or indentation")
	}
}

func TestTagGzip(t *testing.T) {
	resp := get(t, "/sextant.js", "Accept-Encoding", "br, gzip;q=0.8")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding: %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary: %q", resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, Tag()) {
		t.Fatal("gunzipped tag differs from the tag")
	}
	if resp := get(t, "/sextant.js", "Accept-Encoding", "gzip;q=0"); resp.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
}

// TestTagBudget keeps the tag small: it loads on every page of every site.
func TestTagBudget(t *testing.T) {
	const budget = 3072
	n := TagGzipSize()
	t.Logf("tag: %d bytes, %d gzipped (budget %d)", len(Tag()), n, budget)
	if n >= budget {
		t.Fatalf("the gzipped tag is %d bytes, over the %d-byte budget", n, budget)
	}
	resp := get(t, "/sextant.js", "Accept-Encoding", "gzip")
	if got := len(body(t, resp)); got != n {
		t.Fatalf("served %d gzipped bytes, TagGzipSize says %d", got, n)
	}
}

func TestConditional(t *testing.T) {
	resp := get(t, "/sextant.js", "Accept-Encoding", "gzip")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if resp := get(t, "/sextant.js", "Accept-Encoding", "gzip", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d, want 304", resp.StatusCode)
	}
}

func TestDashboard(t *testing.T) {
	resp := get(t, "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("Content-Security-Policy") == "" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("index headers: %v", resp.Header)
	}
	index := string(body(t, resp))
	refs := regexp.MustCompile(`(?:src|href)="(/[^"#]*)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 3 {
		t.Fatalf("the index references %d assets: %q", len(refs), refs)
	}
	for _, m := range refs {
		ref := m[1]
		if !strings.Contains(ref, "?v=") {
			t.Errorf("%s is referenced without its version", ref)
		}
		resp := get(t, ref)
		if resp.StatusCode != 200 {
			t.Errorf("the index references %s: %d", ref, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Cache-Control"); got != immutable {
			t.Errorf("%s: Cache-Control %q, want %q", ref, got, immutable)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", ref)
		}
	}
	for path, ctype := range map[string]string{"/app.js": "text/javascript; charset=utf-8", "/app.css": "text/css; charset=utf-8"} {
		resp := get(t, path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctype {
			t.Errorf("GET %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s without version: Cache-Control %q", path, got)
		}
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	for _, p := range []string{"/index.html", "/v1/collect", "/dashboard/app.js", "/nope", "/healthz"} {
		if resp := get(t, p); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/sextant.js", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /sextant.js: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("HEAD", "/", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD /: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

// TestDashboardSettings: the dashboard has its Settings page, which talks to
// the AdminService on its own origin, and keeps keys out of localStorage.
func TestDashboardSettings(t *testing.T) {
	index := string(body(t, get(t, "/")))
	if !strings.Contains(index, `href="#/settings" data-view="settings"`) {
		t.Error("the navigation has no Settings entry")
	}
	app := string(body(t, get(t, "/app.js")))
	for _, s := range []string{"'/sextant.admin.v1.AdminService/'", "'ListProperties'", "'CreateProperty'", "'UpdateProperty'", "'DeleteProperty'",
		"'CreateKey'", "'ListKeys'", "'RotateKey'", "'RevokeKey'", "sessionStorage"} {
		if !strings.Contains(app, s) {
			t.Errorf("app.js does not contain %s", s)
		}
	}
	if strings.Contains(app, "localStorage") {
		t.Error("app.js uses localStorage: keys must stay in sessionStorage or the page")
	}
}

// TestUnknownPathsJSON: a path that is no page (nor an API route, which
// the server routes before the dashboard) and a method a page does not
// take get errors in the API's shape, not plain text.
func TestUnknownPathsJSON(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		status, code int
		allow        string
	}{
		{"GET", "/nope", 404, 5, ""},
		{"GET", "/mp/nope", 404, 5, ""},
		{"POST", "/", 405, 12, "GET, HEAD"},
	} {
		w := httptest.NewRecorder()
		Handler().ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		var body struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: %q is not JSON: %v", tc.method, tc.path, w.Body.String(), err)
		}
		if w.Code != tc.status || body.Code != tc.code || w.Header().Get("Allow") != tc.allow || !strings.Contains(body.Message, tc.path) {
			t.Errorf("%s %s: %d %+v Allow %q, want %d code %d Allow %q", tc.method, tc.path, w.Code, body, w.Header().Get("Allow"), tc.status, tc.code, tc.allow)
		}
	}
}

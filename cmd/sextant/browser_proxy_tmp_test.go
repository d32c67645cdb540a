package main

// TEMPORARY (web helper): fronts the sextant server with web.Handler() and
// ?key= rewriting until the lead wires them. Delete once wired.

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"testing"

	"github.com/sextant-analytics/sextant/web"
)

func init() {
	if os.Getenv("SEXTANT_BROWSER_PROXY") != "1" {
		return
	}
	sextantFrontend = func(t *testing.T, addr string) string {
		target, _ := url.Parse("http://" + addr)
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.ErrorHandler = func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) }
		wh := web.Handler()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/", "/sextant.js", "/app.js", "/app.css", "/favicon.svg":
				wh.ServeHTTP(w, r)
				return
			}
			if r.URL.Path == "/v1/collect" {
				q := r.URL.Query()
				if k := q.Get("key"); k != "" {
					r.Header.Set("Authorization", "Bearer "+k)
					q.Del("key")
					r.URL.RawQuery = q.Encode()
				}
				if r.Header.Get("Content-Type") == "text/plain;charset=UTF-8" || r.Header.Get("Content-Type") == "text/plain" {
					r.Header.Set("Content-Type", "application/json")
				}
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
}

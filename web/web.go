// Package web serves Sextant's browser side: the JavaScript tag that
// websites embed (/sextant.js) and the dashboard (/ and its assets), all
// embedded in the binary. The dashboard uses only the public REST API.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sextant-analytics/sextant/pkg/rpcerror"
)

//go:embed tag/sextant.js
var tagSource []byte

//go:embed dashboard
var dashboardFS embed.FS

// TagPath is where the tag is served.
const TagPath = "/sextant.js"

// asset is one file, prepared once: its bytes, their gzip (when smaller),
// its type, validators and caching policy.
type asset struct {
	body, gz []byte
	ctype    string
	hash     string // hex, first 16 characters of the SHA-256 of body
	// cache is the Cache-Control header; versioned is used instead when the
	// request's ?v= matches hash (the dashboard's index references its
	// assets so).
	cache, versioned string
	csp              bool
}

var (
	// tag and assets (by URL path) are built once, at package load.
	tag, assets = build()
)

const (
	// The tag's URL never changes, so clients revalidate it every 5 minutes.
	tagCache = "public, max-age=300"
	// The dashboard's index always revalidates; assets referenced with
	// their hash are immutable.
	revalidate = "no-cache"
	immutable  = "public, max-age=31536000, immutable"
	// The dashboard talks only to its own origin.
	dashboardCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

// build prepares every asset once, when the package is loaded: the tag
// stripped and gzipped, the dashboard's files hashed and referenced by hash.
func build() (*asset, map[string]*asset) {
	tag := newAsset(stripTag(tagSource), "text/javascript; charset=utf-8", tagCache)
	assets := map[string]*asset{TagPath: tag}
	files := map[string][]byte{}
	err := fs.WalkDir(dashboardFS, "dashboard", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := dashboardFS.ReadFile(p)
		files["/"+strings.TrimPrefix(p, "dashboard/")] = b
		return err
	})
	if err != nil {
		panic("web: reading the embedded dashboard: " + err.Error())
	}
	index := files["/index.html"]
	delete(files, "/index.html")
	for p, b := range files {
		a := newAsset(b, contentType(p), revalidate)
		a.versioned = immutable
		assets[p] = a
		// Reference the asset with its hash, so browsers may keep it.
		index = bytes.ReplaceAll(index, []byte(`"`+p+`"`), []byte(`"`+p+"?v="+a.hash+`"`))
	}
	home := newAsset(index, "text/html; charset=utf-8", revalidate)
	home.csp = true
	assets["/"] = home
	return tag, assets
}

// types are the content types of the dashboard's files (not the system's
// mime table, which varies between machines).
var types = map[string]string{
	".css":  "text/css; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".ico":  "image/x-icon",
	".js":   "text/javascript; charset=utf-8",
	".png":  "image/png",
	".svg":  "image/svg+xml",
}

func contentType(p string) string {
	if t, ok := types[path.Ext(p)]; ok {
		return t
	}
	return "application/octet-stream"
}

func newAsset(body []byte, ctype, cache string) *asset {
	sum := sha256.Sum256(body)
	a := &asset{body: body, ctype: ctype, cache: cache, hash: hex.EncodeToString(sum[:])[:16]}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	if buf.Len() < len(body) {
		a.gz = buf.Bytes()
	}
	return a
}

var (
	commentLine = regexp.MustCompile(`(?m)^[ \t]*//.*\n`)
	indent      = regexp.MustCompile(`(?m)^[ \t]+`)
)

// stripTag removes the tag's comment lines and indentation: the source
// stays readable, the served file small. (The tag has no multi-line
// strings or template literals, for which this would be wrong.)
func stripTag(src []byte) []byte {
	return indent.ReplaceAll(commentLine.ReplaceAll(src, nil), nil)
}

// Tag returns the tag as served (without compression).
func Tag() []byte { return tag.body }

// TagGzipSize is the size of the tag as served gzipped: the number the
// budget (3 KB) is about.
func TagGzipSize() int {
	if tag.gz == nil {
		return len(tag.body)
	}
	return len(tag.gz)
}

// Handler serves GET and HEAD of /sextant.js, / and the dashboard's assets
// (/app.js, /app.css, /favicon.svg). Everything else is 404, so it can be
// mounted as the catch-all "/" route of a mux that serves the APIs.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.URL.Path]
	if !ok {
		notFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		rpcerror.WriteHTTP(w, http.StatusMethodNotAllowed, codes.Unimplemented, r.Method+" is not allowed on "+r.URL.Path+": it takes GET, HEAD")
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	cache := a.cache
	if a.versioned != "" && r.URL.Query().Get("v") == a.hash {
		cache = a.versioned
	}
	h.Set("Cache-Control", cache)
	if a == tag {
		// Any site may embed the tag, including ones that require CORP.
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	} else {
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Referrer-Policy", "no-referrer")
	}
	if a.csp {
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Frame-Options", "DENY")
	}
	body, etag := a.body, `"`+a.hash+`"`
	if a.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = a.gz, `"`+a.hash+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "x-gzip" && name != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		if q == "q=0" || strings.HasPrefix(q, "q=0.0") && strings.Trim(q[len("q=0."):], "0") == "" {
			return false
		}
		return true
	}
	return false
}

// notFound answers a path that is neither a page nor an API route, in the
// API's error shape (code 5, NOT_FOUND), so that a client that mistyped an
// API path gets an error it parses.
func notFound(w http.ResponseWriter, r *http.Request) {
	rpcerror.WriteHTTP(w, http.StatusNotFound, codes.NotFound, "no page or API route at "+r.URL.Path+": the dashboard is at /, the REST API under /v1/ (described at /openapi.json)")
}

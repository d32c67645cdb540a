package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"

	"github.com/sextant-analytics/sextant/pkg/rpcerror"
)

// routes are the REST paths of the OpenAPI document with their methods,
// to tell a wrong method (405, with Allow) from an unknown path (404).
type routes []route

type route struct {
	pattern *regexp.Regexp
	methods []string
}

var templateParam = regexp.MustCompile(`\{[^}]*\}`)

// parseRoutes reads the paths of a Swagger 2.0 / OpenAPI document: each
// path template ({name} is one segment, {name=**} any) with its methods.
func parseRoutes(doc []byte) routes {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if json.Unmarshal(doc, &d) != nil {
		return nil
	}
	var rs routes
	for path, ops := range d.Paths {
		var b strings.Builder
		b.WriteString("^")
		last := 0
		for _, loc := range templateParam.FindAllStringIndex(path, -1) {
			b.WriteString(regexp.QuoteMeta(path[last:loc[0]]))
			if strings.Contains(path[loc[0]:loc[1]], "**") {
				b.WriteString(".+")
			} else {
				b.WriteString("[^/:]+") // a custom verb (":runReport") is not part of the id
			}
			last = loc[1]
		}
		b.WriteString(regexp.QuoteMeta(path[last:]) + "$")
		re, err := regexp.Compile(b.String())
		if err != nil {
			continue
		}
		var methods []string
		for m := range ops {
			switch m = strings.ToUpper(m); m {
			case "GET", "POST", "PUT", "PATCH", "DELETE":
				methods = append(methods, m)
			}
		}
		sort.Strings(methods)
		rs = append(rs, route{re, methods})
	}
	return rs
}

// allowed is the methods of the paths matching path, sorted.
func (rs routes) allowed(path string) []string {
	var out []string
	for _, r := range rs {
		if r.pattern.MatchString(path) {
			for _, m := range r.methods {
				if !slices.Contains(out, m) {
					out = append(out, m)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// routingError answers a REST request no route takes: 405 with Allow when
// the path exists for other methods, 404 naming the path otherwise, both
// in the API's error shape.
func (s *Server) routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, status int) {
	switch status {
	case http.StatusMethodNotAllowed, http.StatusNotFound:
		if allow := s.routes.allowed(r.URL.Path); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			rpcerror.WriteHTTP(w, http.StatusMethodNotAllowed, codes.Unimplemented,
				fmt.Sprintf("%s is not allowed on %s: it takes %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		rpcerror.WriteHTTP(w, http.StatusNotFound, codes.NotFound,
			fmt.Sprintf("no API route for %s %s: the REST API is described at /openapi.json", r.Method, r.URL.Path))
	default:
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, status)
	}
}

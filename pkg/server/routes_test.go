package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestRoutingErrors(t *testing.T) {
	doc := []byte(`{"swagger":"2.0","paths":{
		"/v1/collect":{"post":{}},
		"/v1/properties/{propertyId}":{"get":{},"patch":{},"delete":{}},
		"/v1/properties/{propertyId}:runReport":{"post":{}},
		"/v1/files/{name=**}":{"get":{}}}}`)
	s := &Server{routes: parseRoutes(doc)}
	for _, tc := range []struct {
		method, path string
		status       int
		code         codes.Code
		allow        string
	}{
		{"GET", "/v1/nope", 404, codes.NotFound, ""},
		{"GET", "/v1/collect", 405, codes.Unimplemented, "POST"},
		{"DELETE", "/v1/collect", 405, codes.Unimplemented, "POST"},
		{"PUT", "/v1/properties/123:runReport", 405, codes.Unimplemented, "POST"},
		{"PUT", "/v1/properties/123", 405, codes.Unimplemented, "DELETE, GET, PATCH"},
		{"POST", "/v1/files/a/b/c", 405, codes.Unimplemented, "GET"},
		{"GET", "/v1/properties/123/nope", 404, codes.NotFound, ""},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		// grpc-gateway reports a known path with another method as 405
		// or 404 depending on its options: both must end the same.
		for _, status := range []int{http.StatusNotFound, http.StatusMethodNotAllowed} {
			w := httptest.NewRecorder()
			s.routingError(r.Context(), nil, nil, w, r, status)
			var body struct {
				Code    codes.Code `json:"code"`
				Message string     `json:"message"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s %s: body %q: %v", tc.method, tc.path, w.Body.String(), err)
			}
			if w.Code != tc.status || body.Code != tc.code || w.Header().Get("Allow") != tc.allow ||
				!strings.Contains(body.Message, tc.path) || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%s %s (router said %d): %d %v Allow %q %q, want %d %v Allow %q",
					tc.method, tc.path, status, w.Code, body.Code, w.Header().Get("Allow"), body.Message, tc.status, tc.code, tc.allow)
			}
		}
	}
}

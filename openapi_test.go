package sextant

import (
	"encoding/json"
	"testing"

	"github.com/go-openapi/loads"
	"github.com/go-openapi/strfmt"
	"github.com/go-openapi/validate"
)

// TestOpenAPIDocument: the served document is valid Swagger 2.0 (checked
// by go-openapi's validator), has a real title, the build's version, a
// bearer key scheme that every operation requires, and the public REST
// surface's main paths.
func TestOpenAPIDocument(t *testing.T) {
	b := OpenAPIOf("0123abc")
	doc, err := loads.Analyzed(json.RawMessage(b), "2.0")
	if err != nil {
		t.Fatalf("loading the document: %v", err)
	}
	if err := validate.Spec(doc, strfmt.Default); err != nil {
		t.Fatalf("the document does not validate: %v", err)
	}
	sp := doc.Spec()
	if sp.Info.Title != "Sextant API" || sp.Info.Version != "0123abc" {
		t.Errorf("info: title %q version %q", sp.Info.Title, sp.Info.Version)
	}
	bearer, ok := sp.SecurityDefinitions["bearer"]
	if !ok || bearer.Type != "apiKey" || bearer.In != "header" || bearer.Name != "Authorization" {
		t.Errorf("security definitions: %+v", sp.SecurityDefinitions)
	}
	if len(sp.Security) != 1 || sp.Security[0]["bearer"] == nil {
		t.Errorf("the document does not require the bearer key: %+v", sp.Security)
	}
	for _, p := range []string{"/v1/collect", "/v1/properties/{propertyId}:runReport", "/v1/properties", "/v1/projections/{name}/versions"} {
		if _, ok := sp.Paths.Paths[p]; !ok {
			t.Errorf("no path %s", p)
		}
	}
	if string(OpenAPIOf("")) != string(OpenAPI) {
		t.Error("OpenAPIOf(\"\") changed the document")
	}
}

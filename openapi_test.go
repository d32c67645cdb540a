package sextant

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-openapi/loads"
	"github.com/go-openapi/spec"
	"github.com/go-openapi/strfmt"
	"github.com/go-openapi/validate"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	collectv1 "github.com/sextant-analytics/sextant/gen/sextant/collect/v1"
	_ "github.com/sextant-analytics/sextant/gen/sextant/ga4/v1beta" // the messages x-sextant-message names
	"github.com/sextant-analytics/sextant/pkg/collectwire"
	"github.com/sextant-analytics/sextant/pkg/ga4data"
	"github.com/sextant-analytics/sextant/pkg/gtag"
	"github.com/sextant-analytics/sextant/pkg/mp"
)

// servedOutsideGateway are the REST routes the server serves with handlers
// of its own ("METHOD path", path parameters as the document names them):
// every one must be in the document, and every path of the document that
// grpc-gateway does not serve must be one of them.
func servedOutsideGateway() []string {
	routes := slices.Clone(ga4data.Routes())
	for _, p := range []string{mp.CollectPath, mp.DebugPath} {
		routes = append(routes, http.MethodPost+" "+p)
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		routes = append(routes, m+" "+gtag.Path)
	}
	// Served in front of grpc-gateway's route of the same path.
	routes = append(routes, collectwire.Route(collectwire.Handlers{}).Pattern)
	return routes
}

// loadDocument loads Document(version), validated when validated is set
// (go-openapi's validator takes seconds).
func loadDocument(t *testing.T, version string, validated bool) *spec.Swagger {
	t.Helper()
	b, err := Document(version)
	if err != nil {
		t.Fatalf("Document: %v", err)
	}
	if string(OpenAPIOf(version)) != string(b) {
		t.Fatal("OpenAPIOf is not Document")
	}
	doc, err := loads.Analyzed(json.RawMessage(b), "2.0")
	if err != nil {
		t.Fatalf("loading the document: %v", err)
	}
	if validated {
		if err := validate.Spec(doc, strfmt.Default); err != nil {
			t.Fatalf("the document does not validate: %v", err)
		}
	}
	return doc.Spec()
}

// operations lists a path item's operations by HTTP method.
func operations(item spec.PathItem) map[string]*spec.Operation {
	out := map[string]*spec.Operation{}
	for m, op := range map[string]*spec.Operation{http.MethodGet: item.Get, http.MethodPost: item.Post, http.MethodPut: item.Put,
		http.MethodPatch: item.Patch, http.MethodDelete: item.Delete, http.MethodHead: item.Head, http.MethodOptions: item.Options} {
		if op != nil {
			out[m] = op
		}
	}
	return out
}

// TestOpenAPIDocument: the served document is valid Swagger 2.0 (checked
// by go-openapi's validator), has a real title, the build's version, a
// bearer key scheme that every operation requires but the Measurement
// Protocol's (its api_secret) and gtag.js's (no key), the public REST
// surface's main paths, and every route served outside grpc-gateway.
func TestOpenAPIDocument(t *testing.T) {
	sp := loadDocument(t, "0123abc", true)
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
	secret, ok := sp.SecurityDefinitions["mpApiSecret"]
	if !ok || secret.Type != "apiKey" || secret.In != "query" || secret.Name != "api_secret" {
		t.Errorf("no api_secret scheme: %+v", sp.SecurityDefinitions)
	}
	for _, p := range []string{"/v1/collect", "/v1/properties/{propertyId}:runReport", "/v1/properties", "/v1/projections/{name}/versions"} {
		if _, ok := sp.Paths.Paths[p]; !ok {
			t.Errorf("no path %s", p)
		}
	}

	served := servedOutsideGateway()
	for _, r := range served {
		method, path, _ := strings.Cut(r, " ")
		item, ok := sp.Paths.Paths[path]
		if !ok {
			t.Errorf("%s is served, and not in the document", r)
			continue
		}
		if operations(item)[method] == nil {
			t.Errorf("%s is served, and the document has no %s operation for it", r, method)
		}
	}
	for path, item := range sp.Paths.Paths {
		for method, op := range operations(item) {
			r := method + " " + path
			if !strings.HasPrefix(path, "/v1/") && !slices.Contains(served, r) {
				t.Errorf("%s is in the document, and served neither by grpc-gateway nor by a route of its own", r)
			}
			var want []string // the schemes required
			switch {
			case path == mp.CollectPath || path == mp.DebugPath:
				want = []string{"mpApiSecret"}
			case path == gtag.Path:
				want = []string{}
			}
			if want == nil {
				if op.Security != nil {
					t.Errorf("%s: security %v, want the document's (bearer)", r, op.Security)
				}
				continue
			}
			var got []string
			for _, req := range op.Security {
				for k := range req {
					got = append(got, k)
				}
			}
			if op.Security == nil || !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%s: security %v, want %v", r, op.Security, want)
			}
		}
	}
}

// TestOpenAPIWrittenSchemasMatchTheMessages: each definition written for a
// route outside grpc-gateway that names the protobuf message it describes
// (x-sextant-message) has that message's JSON fields, less those it lists
// as refused (x-sextant-refused); the Measurement Protocol's body has the
// fields pkg/mp accepts, by the names of collect's messages.
func TestOpenAPIWrittenSchemasMatchTheMessages(t *testing.T) {
	sp := loadDocument(t, "", false)
	var rest struct {
		Definitions map[string]json.RawMessage `json:"definitions"`
	}
	if err := json.Unmarshal(openAPIRest, &rest); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for name := range rest.Definitions {
		def := sp.Definitions[name]
		msg, _ := def.Extensions.GetString("x-sextant-message")
		if msg == "" {
			continue
		}
		checked++
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(msg))
		md, ok := d.(protoreflect.MessageDescriptor)
		if err != nil || !ok {
			t.Errorf("definition %s: no message %s (%v)", name, msg, err)
			continue
		}
		var refused []string
		if v, ok := def.Extensions["x-sextant-refused"].([]any); ok {
			for _, f := range v {
				refused = append(refused, f.(string))
			}
		}
		var fields []string
		for i := range md.Fields().Len() {
			if f := md.Fields().Get(i).JSONName(); !slices.Contains(refused, f) {
				fields = append(fields, f)
			}
		}
		sameFields(t, name+" ("+msg+")", def, fields)
	}
	if checked < 10 {
		t.Errorf("checked %d definitions, want the GA4 messages'", checked)
	}

	// The Measurement Protocol's hit: snake_case, as GA4's.
	hit := sp.Definitions["mpHit"]
	read, ignored := mp.BodyFields()
	sameFields(t, "mpHit", hit, append(read, ignored...))
	req := (&collectv1.CollectRequest{}).ProtoReflect().Descriptor()
	for _, f := range read {
		if req.Fields().ByName(protoreflect.Name(f)) == nil {
			t.Errorf("mpHit: %s is no field of %s", f, req.FullName())
		}
	}
	for prop, md := range map[string]protoreflect.MessageDescriptor{
		"consent":       (&collectv1.Consent{}).ProtoReflect().Descriptor(),
		"device":        (&collectv1.Device{}).ProtoReflect().Descriptor(),
		"user_location": (&collectv1.UserLocation{}).ProtoReflect().Descriptor(),
		"events":        (&collectv1.Event{}).ProtoReflect().Descriptor(),
	} {
		s := hit.Properties[prop]
		if s.Items != nil {
			s = *s.Items.Schema
		}
		var fields []string
		for i := range md.Fields().Len() {
			fields = append(fields, string(md.Fields().Get(i).Name()))
		}
		if prop == "user_location" {
			fields = append(fields, "subcontinent_id", "continent_id") // GA4's, not kept
		}
		sameFields(t, "mpHit."+prop, s, fields)
	}
}

// sameFields checks that s's properties are fields.
func sameFields(t *testing.T, what string, s spec.Schema, fields []string) {
	t.Helper()
	var props []string
	for p := range s.Properties {
		props = append(props, p)
	}
	sort.Strings(props)
	fields = slices.Clone(fields)
	sort.Strings(fields)
	if !slices.Equal(props, fields) {
		t.Errorf("%s: properties %q, want %q", what, props, fields)
	}
}

// Package sextant holds the assets built from this repository's sources that
// the binary serves, such as the OpenAPI document generated from the protos.
package sextant

import (
	_ "embed"
	"encoding/json"
)

// OpenAPI is the OpenAPI (Swagger 2.0) document of the REST API, generated
// by protoc-gen-openapiv2 from proto/ and proto/gateway.yaml.
//
//go:embed gen/openapi/sextant.swagger.json
var OpenAPI []byte

// OpenAPIOf returns OpenAPI with info.version set to version (the build
// that serves it), or OpenAPI unchanged when version is empty.
func OpenAPIOf(version string) []byte {
	if version == "" {
		return OpenAPI
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		return OpenAPI
	}
	var info map[string]any
	if err := json.Unmarshal(doc["info"], &info); err != nil {
		return OpenAPI
	}
	info["version"] = version
	b, err := json.Marshal(info)
	if err != nil {
		return OpenAPI
	}
	doc["info"] = b
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return OpenAPI
	}
	return out
}

// Package sextant holds the assets built from this repository's sources that
// the binary serves, such as the OpenAPI document generated from the protos.
package sextant

import _ "embed"

// OpenAPI is the OpenAPI (Swagger 2.0) document of the REST API, generated
// by protoc-gen-openapiv2 from proto/ and proto/gateway.yaml.
//
//go:embed gen/openapi/sextant.swagger.json
var OpenAPI []byte

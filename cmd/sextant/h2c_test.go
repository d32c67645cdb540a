package main

import "net/http"

// h2c returns protocols for HTTP/2 without TLS (gRPC over cleartext).
func h2c() *http.Protocols {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &p
}

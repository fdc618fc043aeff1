//go:build pprof

// A profiling build (go build -tags pprof) serves net/http/pprof on the
// address in BCCGUARD_PPROF (for example 127.0.0.1:6060), apart from the
// admin listener: for benchmarks only, never in a release build.
package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("BCCGUARD_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}

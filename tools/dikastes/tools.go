//go:build tools

// Package tools pins Calico's dikastes and its healthz probe so that
// `go mod tidy` keeps their dependencies in go.sum.
package tools

import (
	_ "github.com/projectcalico/calico/app-policy/cmd/dikastes"
	_ "github.com/projectcalico/calico/app-policy/cmd/healthz"
)

//go:build tools

// Package tools pins the dyff command so `go mod tidy` keeps its dependencies.
package tools

import _ "github.com/homeport/dyff/cmd/dyff"

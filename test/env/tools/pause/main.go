// Command pause is the sandbox ("pause") container of the test node: it holds a pod's namespaces
// open, reaps the orphans it inherits as PID 1 of a shared PID namespace, and exits on SIGINT or
// SIGTERM. Kubernetes' own pause is C (build/pause/linux/pause.c); this is the same behaviour in Go
// so that the test tools need only a Go toolchain. It is built static (CGO_ENABLED=0).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("sluice test pause\n")
		return
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

// Package testutil holds helpers shared by the tests of every package:
// real servers (redis-server) started on free loopback ports, and the rule
// that a missing external binary skips a test locally but fails it in CI.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where every external
// dependency must be present.
func InCI() bool { return os.Getenv("CI") != "" }

// LookPath returns the path of an external program the test needs. When it
// is missing the test is skipped locally and fails in CI, so CI can never
// pass by silently skipping.
func LookPath(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if InCI() {
			tb.Fatalf("%s is required in CI but not installed: %v", name, err)
		}
		tb.Skipf("%s not installed: %v (make test installs it)", name, err)
	}
	return p
}

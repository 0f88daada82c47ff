// Package browsertest runs the dashboard's browser scripts for tests:
// node with playwright-core driving Debian's chromium headless. The
// scripts and their node_modules live in admin/ui/testdata; admin/ui's
// TestBrowser (against a fake API) and cmd/tern's TestDashboardEndToEnd
// (against a running tern serve) both start them through here.
//
// A missing tool fails the test, never skips it: `make deps` installs
// node, chromium and playwright-core.
package browsertest

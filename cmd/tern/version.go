package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// versionString is the version the binary was built as: -ldflags
// "-X main.version=...", else the module version `go install` recorded,
// else "dev".
func versionString() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// runVersion prints the version, the commit the binary was built from and
// the Go version that built it.
func runVersion(stdout io.Writer) int {
	bi, _ := debug.ReadBuildInfo()
	writeVersion(stdout, versionString(), bi)
	return 0
}

// writeVersion prints what `tern version` prints from the build
// information bi (nil: none recorded).
func writeVersion(w io.Writer, ver string, bi *debug.BuildInfo) {
	commit, modified, goVersion := "unknown", false, runtime.Version()
	if bi != nil {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
	}
	if modified {
		commit += " (modified)"
	}
	fmt.Fprintf(w, "tern %s\ncommit: %s\ngo: %s\n", ver, commit, goVersion)
}

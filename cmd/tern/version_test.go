package main

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &out, &errb); code != 0 {
		t.Fatalf("tern version: code %d, stderr %q", code, errb.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "tern "+versionString() || !strings.HasPrefix(lines[1], "commit: ") ||
		lines[2] != "go: "+runtime.Version() {
		t.Fatalf("tern version printed %q", out.String())
	}
}

func TestWriteVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "tern 1.0.0\ncommit: unknown\ngo: " + runtime.Version() + "\n"},
		{"clean", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "false"}}},
			"tern 1.0.0\ncommit: 0123abcd\ngo: go1.26.8\n"},
		{"modified", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}},
			"tern 1.0.0\ncommit: 0123abcd (modified)\ngo: go1.26.8\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			writeVersion(&b, "1.0.0", tc.bi)
			if b.String() != tc.want {
				t.Fatalf("printed %q, want %q", b.String(), tc.want)
			}
		})
	}
}

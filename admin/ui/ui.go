package ui

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files holds the dashboard with index.html at its root, ready for
// http.FileServerFS.
var Files fs.FS = mustSub(static, "static")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path, which this is not.
		panic(err)
	}
	return sub
}

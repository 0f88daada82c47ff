// Package ui holds the web dashboard's files, embedded in the binary.
//
// Placeholder: the dashboard itself replaces this file and static/.
package ui

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Files are the dashboard's files, index.html at the top.
var Files fs.FS = mustSub(static, "static")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

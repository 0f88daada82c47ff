package pebble_test

import (
	"testing"

	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/store/pebble"
	"github.com/ternmq/tern/store/storetest"
)

func TestStore(t *testing.T) {
	for _, d := range []pebble.Durability{pebble.Sync, pebble.Batch, pebble.None} {
		t.Run(d.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Opener {
				dir := t.TempDir()
				return func(t *testing.T) store.Store { return mustOpen(t, dir, pebble.Options{Durability: d}) }
			})
		})
	}
}

func mustOpen(t testing.TB, dir string, o pebble.Options) *pebble.Store {
	t.Helper()
	st, err := pebble.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

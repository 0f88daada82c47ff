package memory_test

import (
	"testing"

	"github.com/ternmq/tern/store"
	"github.com/ternmq/tern/store/memory"
	"github.com/ternmq/tern/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Opener {
		st := memory.New()
		return func(*testing.T) store.Store { return st }
	})
}

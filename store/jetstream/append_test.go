package jsstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ternmq/tern/store"
	jsstore "github.com/ternmq/tern/store/jetstream"
)

// TestAppendAgain: an append under a message id the stream has is
// dropped, and the appends beside it are kept: the stream refuses a
// batch holding a known id whole, so AppendAgain goes alone.
func TestAppendAgain(t *testing.T) {
	ss := startServers(t, 1)
	js := ss.connect(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "APPEND", Subjects: []string{"app.>"},
		AllowAtomicPublish: true, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	st := mustOpen(t, js, jsstore.Options{Bucket: bucket()})
	defer st.Close()
	mustWait(t, st, st.Append("app.x", "a", []byte("a")))
	var tk store.Ticket
	st.Atomic(func() { // one cut: appends in a row would go as one batch
		st.Append("app.x", "b", []byte("b"))
		st.PutSession(persistent("c1"))
		st.AppendAgain("app.x", "a", []byte("a again"))
		st.AppendAfter("app.x", "c", []byte("c"))
		tk = st.AppendAgain("app.x", "d", []byte("d"))
	})
	mustWait(t, st, tk)
	var got []string
	for seq := uint64(1); ; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			break
		}
		got = append(got, string(m.Data))
	}
	if want := "[a b c d]"; fmt.Sprint(got) != want {
		t.Fatalf("stream holds %v, want %s", got, want)
	}
}

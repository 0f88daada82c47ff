package pebble

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ternmq/tern/store"
)

func open(t *testing.T, dir string, log *slog.Logger) *Store {
	t.Helper()
	st, err := Open(dir, Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func fill(t *testing.T, st *Store) {
	t.Helper()
	st.PutSession(store.Session{ClientID: "c", Version: 4, ExpiryInterval: 0xFFFFFFFF})
	for seq := range uint64(3) {
		st.PutOutbound("c", store.Outbound{Seq: seq + 1, QoS: 1, Message: &store.Message{Topic: "t", Payload: []byte("p")}})
	}
	if err := st.Wait(st.PutRetained(&store.Message{Topic: "r", Payload: []byte("x")})); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedRecordsSkipped: a record whose checksum fails, a record of
// an unknown kind and one whose session is gone are reported and
// removed; everything valid loads.
func TestDamagedRecordsSkipped(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	fill(t, st)
	// Damage one outbound record in place, and add two strays.
	damage(t, st, appendSeqKey(nil, "c", 2))
	st.db.Set([]byte("zzz"), []byte("?"), pebble.Sync)
	st.db.Set(appendSeqKey(nil, "ghost", 1), appendInbound(nil, 0), pebble.Sync)
	st.Close()

	var logs strings.Builder
	st = open(t, dir, slog.New(slog.NewTextHandler(&logs, nil)))
	states, retained, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || len(states[0].Outbound) != 2 || states[0].Outbound[1].Seq != 3 || len(retained) != 1 {
		t.Fatalf("loaded %+v, %d retained: want session c with outbound 1 and 3, and r", states, len(retained))
	}
	if !strings.Contains(logs.String(), "count=3") {
		t.Fatalf("not reported: %q", logs.String())
	}
	st.Close()
	// Reported once: the damaged records are gone.
	logs.Reset()
	st = open(t, dir, slog.New(slog.NewTextHandler(&logs, nil)))
	defer st.Close()
	if _, _, err := st.Load(); err != nil || logs.Len() != 0 {
		t.Fatalf("second load: %v, logs %q", err, logs.String())
	}
}

// TestTornLogTail: garbage after the last complete write-ahead log
// record, as a crash mid-write leaves it, loses nothing committed.
func TestTornLogTail(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, nil)
	fill(t, st)
	st.Close()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no write-ahead log found")
	}
	f, err := os.OpenFile(logs[len(logs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte{0xA5, 0x17, 0x00, 0x42}, 300))
	f.Close()
	st = open(t, dir, nil)
	defer st.Close()
	states, retained, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || len(states[0].Outbound) != 3 || len(retained) != 1 {
		t.Fatalf("after a torn tail: %+v, %d retained", states, len(retained))
	}
}

// TestClosedStoreRefusesWrites: a write after Close never reports
// success.
func TestClosedStoreRefusesWrites(t *testing.T) {
	st := open(t, t.TempDir(), nil)
	st.Close()
	if err := st.Wait(st.PutRetained(&store.Message{Topic: "r", Payload: []byte("x")})); err == nil {
		t.Fatal("write after close reported durable")
	}
}

// damage flips the last byte of key k's value in place, as a bad disk
// would.
func damage(t *testing.T, st *Store, k []byte) {
	t.Helper()
	v, closer, err := st.db.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(v)
	closer.Close()
	bad[len(bad)-1] ^= 0xFF
	st.db.Set(k, bad, pebble.Sync)
}

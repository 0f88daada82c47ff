package jsstore

import (
	"log/slog"
	"testing"
)

// TestUnitsOfAppends: appends in a row share a batch, but not one the
// stream may have (AppendAgain), and a batch holding an AppendAfter
// waits for everything before it.
func TestUnitsOfAppends(t *testing.T) {
	s := &Store{opts: Options{MaxBatch: 16}, log: slog.New(slog.DiscardHandler)}
	ops := []op{
		{subj: "kv.a", data: []byte("1")},
		{subj: "s.x", msgID: "1"},
		{subj: "s.x", msgID: "2", after: true},
		{subj: "s.x", msgID: "3", again: true},
		{subj: "s.x", msgID: "4"},
		{subj: "s.x", msgID: "5"},
	}
	var got []string
	for _, u := range s.units(ops, [][2]int{{0, 1}}) {
		d := ""
		for _, o := range u.ops {
			d += o.subj + "/" + o.msgID + " "
		}
		if u.batch {
			d += "batch "
		}
		if u.after {
			d += "after"
		}
		got = append(got, d)
	}
	want := []string{"kv.a/ batch ", "s.x/1 s.x/2 batch after", "s.x/3 ", "s.x/4 s.x/5 batch "}
	if len(got) != len(want) {
		t.Fatalf("units %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("units %q, want %q", got, want)
		}
	}
}

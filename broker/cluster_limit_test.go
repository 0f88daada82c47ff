package broker

import "testing"

// smallCluster is a cluster that carries messages of at most 1000 bytes.
type smallCluster struct{ Cluster }

func (smallCluster) MaxMessageSize() uint32 { return 1000 }
func (smallCluster) Streams() bool          { return false }

// TestMaxPacketSizeWithinCluster: a PUBLISH the cluster could not carry
// between nodes is refused as too large, not acknowledged and lost: the
// packet limit in force, at start and after a reload, is the cluster's.
func TestMaxPacketSizeWithinCluster(t *testing.T) {
	b, err := New(Options{Cluster: smallCluster{}, MaxPacketSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.opts().MaxPacketSize; got != 1000 {
		t.Errorf("MaxPacketSize %d, want the cluster's 1000", got)
	}
	b.Reload(Options{MaxPacketSize: 1 << 20})
	if got := b.opts().MaxPacketSize; got != 1000 {
		t.Errorf("after a reload MaxPacketSize %d, want the cluster's 1000", got)
	}
	b.Reload(Options{MaxPacketSize: 500})
	if got := b.opts().MaxPacketSize; got != 500 {
		t.Errorf("a smaller limit: MaxPacketSize %d, want 500", got)
	}
}

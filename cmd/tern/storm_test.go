package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ternmq/tern/packet"
)

// TestReconnectStorm measures a reconnect storm: TERN_STORM clients with
// persistent sessions (one subscription each), the broker restarted, and
// every client reconnecting at the same moment. It reports how long the
// restart and the storm took, the CONNACK latencies, the broker's peak
// memory, and who was refused; it asserts only that nobody was refused
// and every session came back. A measurement, not part of the suite: set
// TERN_STORM=19000 (and run without -race) to run it.
func TestReconnectStorm(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TERN_STORM"))
	if n <= 0 {
		t.Skip("a measurement: set TERN_STORM=<clients> to run it")
	}
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = lim.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // the broker child inherits it
	addr := freeAddr(t)
	dir := t.TempDir()
	bp := runBrokerProc(t, addr, []string{"serve", "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--admin", "", "--log-level", "warn"}, time.Now())

	// Sessions: connect, subscribe, stay connected.
	conns := make([]net.Conn, n)
	var setupFail atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := stormConnect(addr, i, 30*time.Second)
			if err == nil {
				err = stormSubscribe(c, i)
			}
			if err != nil {
				setupFail.Add(1)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if setupFail.Load() > 0 {
		t.Fatalf("%d of %d clients could not set up their sessions", setupFail.Load(), n)
	}
	t0 := time.Now()
	if err := bp.stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(t0)
	for _, c := range conns {
		c.Close()
	}
	t1 := time.Now()
	if err := bp.start(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Since(t1)
	pid := bp.cmd.Process.Pid
	rssBefore := procStatus(pid, "VmRSS")

	// The storm: everyone at once.
	lat := make([]time.Duration, n)
	var refused, failed, present atomic.Int64
	var firstErr atomic.Value
	release := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-release
			start := time.Now()
			c, ack, err := stormDial(addr, i, 120*time.Second)
			switch {
			case err != nil:
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			case ack.ReasonCode != 0:
				refused.Add(1)
			case ack.SessionPresent:
				present.Add(1)
			}
			lat[i] = time.Since(start)
			conns[i] = c
		})
	}
	t2 := time.Now()
	close(release)
	wg.Wait()
	storm := time.Since(t2)
	peak := procStatus(pid, "VmHWM")
	rssAfter := procStatus(pid, "VmRSS")
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("reconnect storm, %d clients with persistent sessions:", n)
	t.Logf("  SIGTERM to exit %v; restart to accepting (restoring %d sessions) %v", stopped.Round(time.Millisecond), n, restarted.Round(time.Millisecond))
	t.Logf("  all CONNACKs after %v: p50 %v, p99 %v, max %v", storm.Round(time.Millisecond), q(0.5).Round(time.Millisecond),
		q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	t.Logf("  session present %d, refused %d, failed %d (first: %v)", present.Load(), refused.Load(), failed.Load(), firstErr.Load())
	t.Logf("  broker memory: RSS %s after restart, %s after the storm, peak %s", rssBefore, rssAfter, peak)
	if refused.Load() > 0 || failed.Load() > 0 || present.Load() != int64(n) {
		t.Errorf("refused %d, failed %d, sessions present %d of %d", refused.Load(), failed.Load(), present.Load(), n)
	}
}

func stormConnect(addr string, i int, timeout time.Duration) (net.Conn, error) {
	c, ack, err := stormDial(addr, i, timeout)
	if err == nil && ack.ReasonCode != 0 {
		c.Close()
		err = fmt.Errorf("CONNACK %d", ack.ReasonCode)
	}
	return c, err
}

// stormDial connects client i with a persistent session and returns its
// CONNACK.
func stormDial(addr string, i int, timeout time.Duration) (net.Conn, *packet.Connack, error) {
	deadline := time.Now().Add(timeout)
	var nc net.Conn
	var err error
	for {
		// A full accept queue refuses or drops SYNs: dial again, as a
		// client would, until the deadline.
		if nc, err = net.DialTimeout("tcp", addr, time.Until(deadline)); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, nil, err
	}
	nc.SetDeadline(deadline)
	b, _ := (&packet.Connect{ProtocolName: "MQTT", ProtocolLevel: packet.V311, ClientID: "storm-" + strconv.Itoa(i), KeepAlive: 300}).Append(nil, packet.V311)
	if _, err := nc.Write(b); err != nil {
		nc.Close()
		return nil, nil, err
	}
	p, err := packet.ReadPacket(bufio.NewReaderSize(nc, 64), packet.V311, 0)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("waiting for CONNACK: %w", err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		nc.Close()
		return nil, nil, fmt.Errorf("got %s, want CONNACK", p.Type())
	}
	nc.SetDeadline(time.Time{})
	return nc, ack, nil
}

func stormSubscribe(nc net.Conn, i int) error {
	b, _ := (&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "storm/" + strconv.Itoa(i), QoS: 1}}}).Append(nil, packet.V311)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(b); err != nil {
		return err
	}
	p, err := packet.ReadPacket(bufio.NewReaderSize(nc, 64), packet.V311, 0)
	if err != nil {
		return err
	}
	if _, ok := p.(*packet.Suback); !ok {
		return fmt.Errorf("got %s, want SUBACK", p.Type())
	}
	return nil
}

// procStatus returns a field of /proc/pid/status, such as "VmHWM".
func procStatus(pid int, field string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

package broker_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	"github.com/ternmq/tern/internal/testpki"
	"github.com/ternmq/tern/listener"
	"github.com/ternmq/tern/packet"
)

// TestIdleMemoryVersusMosquitto measures what an idle connection with one
// subscription costs Tern and Mosquitto, each a process of its own, in
// the same run: the growth of the broker's resident memory from no
// connection to N, per connection, over TCP and over TLS. It opens up to
// 19,000 connections (the broker's and the client's ends are in
// different processes, each within 20,000 open files), so it runs only
// with TERN_MEMTEST=1; TERN_MEMTEST_COUNTS changes the counts
// (default 5000,10000,19000) and TERN_MEMTEST_TLS=0 leaves TLS out. It
// reports and asserts nothing: ratios of two processes on a shared
// machine are for reading, not for failing a build.
//
//	TERN_MEMTEST=1 go test ./broker/ -run IdleMemoryVersusMosquitto -v -timeout 30m
func TestIdleMemoryVersusMosquitto(t *testing.T) {
	if os.Getenv("TERN_MEMTEST") != "1" {
		t.Skip("set TERN_MEMTEST=1 to measure (opens up to 19,000 connections)")
	}
	counts := []int{5000, 10000, 19000}
	if s := os.Getenv("TERN_MEMTEST_COUNTS"); s != "" {
		counts = counts[:0]
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("TERN_MEMTEST_COUNTS: %v", err)
			}
			counts = append(counts, n)
		}
	}
	mosquitto, err := exec.LookPath("/usr/sbin/mosquitto")
	if err != nil {
		t.Fatal("mosquitto not found: install the mosquitto package (make test does)")
	}
	pki := testpki.New(t, "memtest")
	srv := pki.Server("server", "localhost")
	transports := []string{"tcp", "tls"}
	if os.Getenv("TERN_MEMTEST_TLS") == "0" {
		transports = transports[:1]
	}
	source := byte(2) // a loopback source address per run: no port is reused while in TIME_WAIT
	for _, tr := range transports {
		var dial func(src net.IP, addr string) (net.Conn, error)
		if tr == "tls" {
			cfg := pki.ClientConfig()
			dial = func(src net.IP, addr string) (net.Conn, error) {
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
				return tls.DialWithDialer(d, "tcp", addr, cfg)
			}
		} else {
			dial = func(src net.IP, addr string) (net.Conn, error) {
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
				return d.Dial("tcp", addr)
			}
		}
		results := map[string][]float64{}
		for _, name := range []string{"tern", "mosquitto"} {
			var p *memProcess
			if name == "tern" {
				p = startTernProcess(t, tr, srv)
			} else {
				p = startMosquittoProcess(t, mosquitto, tr, srv)
			}
			src := net.IPv4(127, 0, 0, source)
			source++
			base := p.rss(t)
			var baseGo goMem
			if p.stats != nil {
				baseGo = p.stats(t)
			}
			var conns []net.Conn
			for _, n := range counts {
				conns = openIdle(t, dial, src, p.addr, conns, n)
				time.Sleep(time.Second) // let the broker settle
				grown := float64(p.rss(t)-base) / float64(n)
				results[name] = append(results[name], grown)
				line := fmt.Sprintf("%-9s %s %6d idle connections: RSS +%7.0f B/conn", name, tr, n, grown)
				if p.stats != nil {
					m := p.stats(t) // collects: the RSS after it is lower
					line += fmt.Sprintf(" (after GC: RSS +%5.0f: heap +%5.0f, stacks +%4.0f, runtime off-heap +%4.0f; goroutines %d)",
						float64(p.rss(t)-base)/float64(n), perConn(m.heap, baseGo.heap, n),
						perConn(m.stack, baseGo.stack, n), perConn(m.other, baseGo.other, n), m.goroutines)
				}
				t.Log(line)
			}
			for _, c := range conns {
				c.Close()
			}
			p.stop()
		}
		for i, n := range counts {
			tern, mosq := results["tern"][i], results["mosquitto"][i]
			t.Logf("%s %6d: tern %.0f B/conn, mosquitto %.0f B/conn, tern/mosquitto %.2f", tr, n, tern, mosq, tern/mosq)
		}
	}
}

func perConn(now, base uint64, n int) float64 { return (float64(now) - float64(base)) / float64(n) }

// openIdle opens connections from src to addr until there are n, each
// with one subscription, and returns them all.
func openIdle(t *testing.T, dial func(net.IP, string) (net.Conn, error), src net.IP, addr string, conns []net.Conn, n int) []net.Conn {
	t.Helper()
	start := len(conns)
	if n <= start {
		return conns
	}
	out := make([]net.Conn, n-start)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := openOneIdle(dial, src, addr, start+i)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				out[i] = c
			}
		}()
	}
	for i := range out {
		next <- i
	}
	close(next)
	wg.Wait()
	conns = append(conns, out...)
	if firstErr != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		t.Fatalf("opening connection: %v", firstErr)
	}
	return conns
}

func openOneIdle(dial func(net.IP, string) (net.Conn, error), src net.IP, addr string, i int) (net.Conn, error) {
	c, err := dial(src, addr)
	if err != nil {
		return nil, err
	}
	w, _ := (&packet.Connect{ProtocolLevel: 4, ClientID: fmt.Sprint("idle-", i), CleanStart: true, KeepAlive: 900}).Append(nil, 4)
	w, _ = (&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: fmt.Sprintf("idle/%d/cmd", i), QoS: 1}}}).Append(w, 4)
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.Write(w); err != nil {
		c.Close()
		return nil, err
	}
	var buf [9]byte // CONNACK (4) + SUBACK (5)
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("connection %d: %w", i, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// memProcess is a broker running as a process of its own.
type memProcess struct {
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// stats, for Tern only, collects garbage, returns memory to the
	// system and reports the Go runtime's view.
	stats func(t *testing.T) goMem
}

type goMem struct {
	heap, stack, other uint64
	goroutines         int
}

// rss is the process's resident memory in bytes.
func (p *memProcess) rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func (p *memProcess) stop() {
	if p.stdin != nil {
		p.stdin.Close()
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startMosquittoProcess(t *testing.T, bin, transport string, srv testpki.Issued) *memProcess {
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	// Run as ourselves, so that it can read the key in our temporary
	// directory.
	conf := fmt.Sprintf("user root\nlistener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\n", port)
	if transport == "tls" {
		conf += fmt.Sprintf("certfile %s\nkeyfile %s\n", srv.CertFile, srv.KeyFile)
	}
	path := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &memProcess{addr: addr, cmd: cmd}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			p.stop()
			t.Fatalf("mosquitto did not listen on %s", addr)
		}
	}
	time.Sleep(200 * time.Millisecond)
	return p
}

// startTernProcess runs this test binary again as a broker
// (TestIdleMemoryServer) serving transport.
func startTernProcess(t *testing.T, transport string, srv testpki.Issued) *memProcess {
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleMemoryServer$", "-test.v=false")
	cmd.Env = append(os.Environ(), "TERN_MEMTEST_SERVE="+transport,
		"TERN_MEMTEST_CERT="+srv.CertFile, "TERN_MEMTEST_KEY="+srv.KeyFile)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &memProcess{cmd: cmd, stdin: stdin}
	out := bufio.NewScanner(stdout)
	line := func() string {
		if !out.Scan() {
			p.stop()
			t.Fatalf("tern process: %v", out.Err())
		}
		return out.Text()
	}
	for {
		if a, ok := strings.CutPrefix(line(), "addr "); ok {
			p.addr = a
			break
		}
	}
	p.stats = func(t *testing.T) goMem {
		io.WriteString(stdin, "gc\n")
		var m goMem
		if _, err := fmt.Sscanf(line(), "heap %d stack %d other %d goroutines %d", &m.heap, &m.stack, &m.other, &m.goroutines); err != nil {
			t.Fatal(err)
		}
		return m
	}
	time.Sleep(200 * time.Millisecond)
	return p
}

// TestIdleMemoryServer is the broker process of
// TestIdleMemoryVersusMosquitto: it prints "addr host:port", then
// answers each "gc" on its input with its memory after a collection, and
// exits when its input closes.
func TestIdleMemoryServer(t *testing.T) {
	transport := os.Getenv("TERN_MEMTEST_SERVE")
	if transport == "" {
		t.Skip("the broker process of TestIdleMemoryVersusMosquitto")
	}
	cfg := listener.Config{Type: transport, Address: "127.0.0.1:0"}
	if transport == "tls" {
		cfg.TLS = listener.TLSConfig{CertFile: os.Getenv("TERN_MEMTEST_CERT"), KeyFile: os.Getenv("TERN_MEMTEST_KEY")}
	}
	ln, err := listener.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(ln)
	fmt.Printf("addr %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "gc" {
			runtime.GC()
			debug.FreeOSMemory()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			// OtherSys holds the runtime's poll descriptors, one per socket.
			fmt.Printf("heap %d stack %d other %d goroutines %d\n", ms.HeapInuse, ms.StackInuse, ms.OtherSys, runtime.NumGoroutine())
		}
	}
	os.Exit(0) // closing 19,000 connections one by one is not the point
}

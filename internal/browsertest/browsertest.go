package browsertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// MarkPrefix starts a line a script prints to tell the test where it is
// ("@@ kicked"); the test answers on the script's stdin with a line.
const MarkPrefix = "@@ "

// Require returns node and chromium (TERN_CHROMIUM, default
// /usr/bin/chromium), failing t with what to run when either, or
// playwright-core under testdata, is missing.
func Require(t testing.TB, testdata string) (node, chromium string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (make deps installs it): %v", err)
	}
	chromium = os.Getenv("TERN_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("chromium is not installed (make deps installs Debian's chromium): %v", err)
	}
	if _, err := os.Stat(filepath.Join(testdata, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("playwright-core is not installed (make deps runs npm ci in admin/ui/testdata): %v", err)
	}
	return node, chromium
}

// Script is a node script running.
type Script struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	marks chan string
	done  chan struct{}
	err   error // once done is closed

	mu  sync.Mutex
	out strings.Builder // stdout and stderr, as they come
}

// Start runs node on script in dir with env added to the environment
// (TERN_CHROMIUM is set to chromium). The script is killed when ctx ends
// and at the end of the test.
func Start(t testing.TB, ctx context.Context, node, chromium, dir, script string, env ...string) *Script {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	s := &Script{name: script, marks: make(chan string, 16), done: make(chan struct{})}
	s.cmd = exec.CommandContext(ctx, node, script)
	s.cmd.Dir = dir
	s.cmd.Env = append(append(os.Environ(), "TERN_CHROMIUM="+chromium), env...)
	s.cmd.Stderr = writerFunc(s.write)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node %s: %v", script, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			s.write([]byte(line + "\n"))
			if m, ok := strings.CutPrefix(line, MarkPrefix); ok {
				select {
				case s.marks <- m:
				default: // nobody waits for this many marks: keep the output going
				}
			}
		}
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (s *Script) write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

// Output is what the script printed so far.
func (s *Script) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// Done is closed when the script has exited; Err then says how.
func (s *Script) Done() <-chan struct{} { return s.done }

// Err is the script's exit error, once Done is closed.
func (s *Script) Err() error { return s.err }

// Fatal fails t with err and the script's output.
func (s *Script) Fatal(t testing.TB, err error) {
	t.Helper()
	t.Fatalf("node %s: %v\n%s", s.name, err, s.Output())
}

// Await waits for the script to print MarkPrefix+mark, failing t if it
// prints another mark, exits or takes longer than timeout.
func (s *Script) Await(t testing.TB, mark string, timeout time.Duration) {
	t.Helper()
	select {
	case m := <-s.marks:
		if m != mark {
			s.Fatal(t, fmt.Errorf("printed mark %q, want %q", m, mark))
		}
	case <-s.done:
		s.Fatal(t, errors.Join(fmt.Errorf("exited before %q", mark), s.err))
	case <-time.After(timeout):
		s.Fatal(t, fmt.Errorf("no %q within %v", mark, timeout))
	}
}

// Tell writes line to the script's stdin.
func (s *Script) Tell(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		s.Fatal(t, fmt.Errorf("tell %q: %w", line, err))
	}
}

// Wait waits for the script to exit, failing t unless it succeeds within
// timeout.
func (s *Script) Wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-s.done:
		if s.err != nil {
			s.Fatal(t, s.err)
		}
	case <-time.After(timeout):
		s.Fatal(t, fmt.Errorf("still running after %v", timeout))
	}
}

// Command tern is the Tern MQTT broker and its command-line clients:
//
//	tern serve   run the broker
//	tern pub     publish a message
//	tern sub     subscribe and print messages
//	tern bench   load test a broker
//	tern passwd  manage a password file
//	tern check-config  check a configuration file
//	tern version print the version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `tern: MQTT broker and clients

Usage:
  tern serve [flags]   run the broker (127.0.0.1:1883, anonymous, by default)
  tern pub [flags]     publish a message
  tern sub [flags]     subscribe and print messages
  tern bench <scenario> [flags]  load test a broker: conn, pub, sub, fanin, fanout, p2p
  tern passwd [-c] [-b] [-D] <file> <user> [password]  add, change (-c: new file) or delete (-D) a user in a password file
  tern check-config <file>  check a configuration file without starting anything
  tern version         print the version, the commit and the Go version

Run 'tern <command> -help' for the flags of a command.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second Ctrl-C kills, whatever the first one is waiting for
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "pub":
		return runPub(ctx, args[1:], stdin, stdout, stderr)
	case "sub":
		return runSub(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "passwd":
		return runPasswd(args[1:], stdin, stdout, stderr)
	case "version", "-version", "--version":
		return runVersion(stdout)
	case "check-config":
		return runCheckConfig(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tern: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ternmq/tern/store/pebble"
)

const checkConfigUsage = `Usage: tern check-config <file>

Loads and checks a configuration file as 'tern serve --config <file>' would
(keys and values, listeners and their certificates, password and ACL files,
limits, storage settings, the admin server's credentials, webhook URLs and
events, bridges and their password and certificate files, the cluster
section and its NATS credentials and TLS files) without opening a socket or
the store. Prints "ok"
and exits 0 when the configuration is good; prints what is wrong and exits 1
otherwise.
`

func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tern check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkConfigUsage) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if err := checkConfig(fs.Arg(0)); err != nil {
		fmt.Fprintf(stderr, "tern check-config: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

// checkConfig loads the configuration file at path over the defaults and
// checks it; errors name the file (and, from the YAML decoder, the line).
func checkConfig(path string) error {
	cfg := defaultConfig()
	if err := loadConfig(path, &cfg); err != nil {
		return err // names the file already
	}
	if err := validateConfig(cfg); err != nil {
		return fmt.Errorf("%s:\n%w", path, err)
	}
	return nil
}

// validateConfig runs every check `tern serve` makes of cfg before it
// opens anything, and reports every failure at once.
func validateConfig(cfg Config) error {
	var errs []error
	if _, err := newLogger(io.Discard, cfg.LogLevel, cfg.LogFormat); err != nil {
		errs = append(errs, err)
	}
	if len(cfg.Listeners) == 0 {
		errs = append(errs, errors.New("no listeners configured"))
	}
	for _, l := range cfg.Listeners {
		if err := l.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	// Limits, MQTT settings and the auth files (password, ACL, http_auth).
	if _, err := brokerOptions(cfg, slog.New(slog.DiscardHandler)); err != nil {
		errs = append(errs, err)
	}
	// The admin server's credentials (token file, users of the password
	// file) and whether its address may go without them.
	a, err := adminAuth(cfg)
	if err == nil {
		addr, _ := cfg.Admin.address()
		err = checkAdminAddress(addr, a)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if !off(cfg.Storage.Persist) {
		if _, err := pebble.ParseDurability(cfg.Storage.Durability); err != nil {
			errs = append(errs, fmt.Errorf("storage: %w", err))
		}
	}
	// The cluster section: names, addresses, NATS URLs, credentials and
	// TLS files; its errors carry their line.
	if cfg.Cluster.enabled() {
		if _, err := clusterConfig(cfg, cfg.Storage.DataDir, slog.New(slog.DiscardHandler)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

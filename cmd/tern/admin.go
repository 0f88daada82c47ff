package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/ternmq/tern/admin"
	"github.com/ternmq/tern/admin/ui"
	authfile "github.com/ternmq/tern/auth/file"
)

// dashboardFiles are the web dashboard served at the admin server's /.
var dashboardFiles = ui.Files

// defaultAdminAddress is where the admin server listens unless told
// otherwise: this machine only.
const defaultAdminAddress = "127.0.0.1:18830"

// Admin is the admin section of the configuration: the HTTP server of
// health, metrics, the REST API and the dashboard.
type Admin struct {
	// Address is host:port; unset: defaultAdminAddress, and a port
	// already taken there is only a warning; "": no admin server.
	Address   *string  `yaml:"address"`
	Token     string   `yaml:"token"`      // accepted as "Authorization: Bearer <token>"
	TokenFile string   `yaml:"token_file"` // a file holding the token (not with token)
	Users     []string `yaml:"users"`      // users of password_file who may sign in with HTTP Basic
}

// address is where to listen ("": nowhere) and whether it was asked
// for rather than defaulted.
func (a Admin) address() (addr string, explicit bool) {
	if a.Address == nil {
		return defaultAdminAddress, false
	}
	return *a.Address, true
}

// adminAuth reads the admin credentials of cfg; on reload too, so the
// token file and the password file are read anew.
func adminAuth(cfg Config) (admin.Auth, error) {
	a := admin.Auth{Token: cfg.Admin.Token, Users: cfg.Admin.Users}
	if cfg.Admin.TokenFile != "" {
		if a.Token != "" {
			return a, errors.New("admin: token and token_file: give one")
		}
		b, err := os.ReadFile(cfg.Admin.TokenFile)
		if err != nil {
			return a, fmt.Errorf("admin.token_file: %w", err)
		}
		if a.Token = strings.TrimSpace(string(b)); a.Token == "" {
			return a, fmt.Errorf("admin.token_file %s: empty", cfg.Admin.TokenFile)
		}
	}
	if len(a.Users) > 0 {
		if cfg.PasswordFile == "" {
			return a, errors.New("admin.users: the users are those of password_file, and none is configured")
		}
		pw, err := authfile.LoadPasswords(cfg.PasswordFile, false)
		if err != nil {
			return a, fmt.Errorf("admin.users: password_file: %w", err)
		}
		a.Passwords = pw
	}
	return a, nil
}

// listenAdmin opens the admin server's socket, or returns nil when there
// is to be none: switched off, or the default port is taken (another
// broker on this machine has it; a warning, not a reason to stay down).
func listenAdmin(cfg Config, a admin.Auth, log *slog.Logger) (net.Listener, error) {
	addr, explicit := cfg.Admin.address()
	if addr == "" {
		return nil, nil
	}
	if err := checkAdminAddress(addr, a); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if !explicit && errors.Is(err, syscall.EADDRINUSE) {
			log.Warn("admin server not started: its default address is taken; set admin.address or --admin", "address", addr)
			return nil, nil
		}
		return nil, fmt.Errorf("admin: %w", err)
	}
	return l, nil
}

// checkAdminAddress refuses an address other machines may reach when no
// credentials are configured: there, every request needs them.
func checkAdminAddress(addr string, a admin.Auth) error {
	if addr != "" && !admin.IsLoopbackAddress(addr) && !a.Configured() {
		return fmt.Errorf("admin: %s is not a loopback address: configure admin.token, admin.token_file or admin.users", addr)
	}
	return nil
}

// limitsMap is the limits section as /api/v1/info shows it: keys and
// values as in the configuration file.
func limitsMap(l Limits) map[string]any {
	m := map[string]any{}
	b, err := yaml.Marshal(l)
	if err == nil {
		err = yaml.Unmarshal(b, &m)
	}
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return m
}

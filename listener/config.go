package listener

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	proxyproto "github.com/pires/go-proxyproto"
)

// Config describes one listener. Every field but Address is optional.
type Config struct {
	// Type is tcp (default), tls, ws, wss or unix.
	Type string `yaml:"type"`
	// Logger receives what the listener itself has to say (refused PROXY
	// headers, failed WebSocket handshakes at debug); default
	// slog.Default().
	Logger *slog.Logger `yaml:"-"`
	// Address is host:port, or a socket path for unix.
	Address string `yaml:"address"`
	// Path is the HTTP path WebSocket clients connect to (ws, wss);
	// default /mqtt.
	Path string `yaml:"path"`
	// Origins lists the browser origins (host patterns, as
	// websocket.AcceptOptions.OriginPatterns takes them) allowed besides
	// the request's own host (ws, wss). Clients that send no Origin, such
	// as every non-browser client, are always allowed.
	Origins []string `yaml:"origins"`
	// TLS holds the certificate and client-certificate settings (tls, wss).
	TLS TLSConfig `yaml:"tls"`
	// ProxyProtocol accepts PROXY protocol v1 and v2 headers (tcp, tls,
	// ws, wss, unix): the address in the header becomes the connection's
	// RemoteAddr.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// ProxyTrusted lists the upstreams (CIDRs or single addresses) allowed
	// to send a PROXY header; a connection from anywhere else that sends
	// one is closed, one that sends none is served with its own address.
	// Empty: loopback only (127.0.0.0/8 and ::1), so that no remote client
	// can forge its address; a load balancer elsewhere must be listed.
	// Unix listeners trust every peer (the socket file's permissions decide
	// who connects).
	ProxyTrusted []string `yaml:"proxy_trusted"`
}

// TLSConfig names the PEM files of a tls or wss listener.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of the CAs client certificates are
	// verified against.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is none (default), request (verify a certificate if the
	// client sends one) or require.
	ClientAuth string `yaml:"client_auth"`
	// CertUsername is "", cn or san: the verified client certificate's
	// Common Name, or its first DNS (else e-mail) SAN, becomes the
	// client's username.
	CertUsername string `yaml:"cert_username"`
}

// Listener types.
const (
	TypeTCP  = "tcp"
	TypeTLS  = "tls"
	TypeWS   = "ws"
	TypeWSS  = "wss"
	TypeUnix = "unix"
)

// DefaultPath is where WebSocket listeners serve when Path is empty.
const DefaultPath = "/mqtt"

// withDefaults returns cfg with the empty optional fields filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Type == "" {
		cfg.Type = TypeTCP
	}
	if cfg.Path == "" && (cfg.Type == TypeWS || cfg.Type == TypeWSS) {
		cfg.Path = DefaultPath
	}
	if cfg.TLS.ClientAuth == "" {
		cfg.TLS.ClientAuth = "none"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// name identifies the listener in errors and logs.
func (cfg Config) name() string {
	t := cfg.Type
	if t == "" {
		t = TypeTCP
	}
	return fmt.Sprintf("listener %s %s", t, cfg.Address)
}

// Validate reports every mistake in cfg at once, each naming the listener,
// so that a configuration file can be checked before anything is opened.
func (cfg Config) Validate() error {
	c := cfg.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{cfg.name()}, args...)...))
	}
	if c.Address == "" {
		bad("address is required")
	}
	secure := c.Type == TypeTLS || c.Type == TypeWSS
	web := c.Type == TypeWS || c.Type == TypeWSS
	switch c.Type {
	case TypeTCP, TypeTLS, TypeWS, TypeWSS, TypeUnix:
	default:
		bad("unknown type %q (want tcp, tls, ws, wss or unix)", c.Type)
	}
	if !web && (cfg.Path != "" || len(cfg.Origins) > 0) {
		bad("path and origins apply only to ws and wss listeners")
	}
	if web && !strings.HasPrefix(c.Path, "/") {
		bad("path %q must start with /", c.Path)
	}
	if !secure && cfg.TLS != (TLSConfig{}) {
		bad("tls settings apply only to tls and wss listeners")
	}
	if secure {
		errs = append(errs, c.TLS.validate(cfg.name())...)
	}
	if len(c.ProxyTrusted) > 0 && !c.ProxyProtocol {
		bad("proxy_trusted needs proxy_protocol: true")
	}
	if len(c.ProxyTrusted) > 0 && c.Type == TypeUnix {
		// Unix peers have no IP address to match.
		bad("proxy_trusted does not apply to unix listeners")
	}
	for _, r := range c.ProxyTrusted {
		// The library that applies the list is the one to judge it.
		if _, err := proxyproto.PolicyFromRanges([]string{r}, proxyproto.USE, proxyproto.REJECT); err != nil {
			bad("proxy_trusted: %v", err)
		}
	}
	return errors.Join(errs...)
}

// validate checks the TLS settings of the listener called name.
func (t TLSConfig) validate(name string) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: tls."+format, append([]any{name}, args...)...))
	}
	if t.CertFile == "" {
		bad("cert_file is required")
	}
	if t.KeyFile == "" {
		bad("key_file is required")
	}
	switch t.ClientAuth {
	case "", "none":
		if t.ClientCAFile != "" {
			// A CA that verifies nothing would give a false sense of
			// security: say which client_auth was meant.
			bad("client_ca_file needs client_auth: request or require")
		}
	case "request", "require":
		if t.ClientCAFile == "" {
			bad("client_auth %s needs client_ca_file", t.ClientAuth)
		}
	default:
		bad("client_auth %q: want none, request or require", t.ClientAuth)
	}
	switch t.CertUsername {
	case "", "cn", "san":
		if t.CertUsername != "" && t.ClientCAFile == "" {
			bad("cert_username needs client_ca_file (only verified certificates name users)")
		}
	default:
		bad("cert_username %q: want cn or san", t.CertUsername)
	}
	return errs
}

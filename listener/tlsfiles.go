package listener

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// tlsFiles holds what a tls or wss listener reads from disk: its
// certificate and, with client certificates, the per-handshake
// configuration that carries the client CA pool. Both are swapped
// atomically by Reload, so a handshake sees either the old files or the
// new ones, never a mix, and established connections are not touched.
type tlsFiles struct {
	files TLSConfig
	cert  atomic.Pointer[tls.Certificate]
	// client is the configuration handed out by GetConfigForClient; nil
	// when client certificates are not asked for.
	client atomic.Pointer[tls.Config]
	// reload serializes reloads, so that two of them cannot interleave
	// and leave the certificate of one beside the CA pool of the other.
	reload sync.Mutex
}

// loadTLSFiles reads the files t names.
func loadTLSFiles(t TLSConfig) (*tlsFiles, error) {
	f := &tlsFiles{files: t}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload re-reads the certificate, key and client CA bundle. On error the
// ones in force stay, and the error names the file at fault.
func (f *tlsFiles) Reload() error {
	f.reload.Lock()
	defer f.reload.Unlock()
	cert, err := loadKeyPair(f.files.CertFile, f.files.KeyFile)
	if err != nil {
		return err
	}
	var client *tls.Config
	if f.files.ClientCAFile != "" {
		pool, err := loadCAPool(f.files.ClientCAFile)
		if err != nil {
			return err
		}
		client = f.clientConfig(pool)
	}
	f.cert.Store(cert)
	f.client.Store(client)
	return nil
}

// loadKeyPair reads and pairs a PEM certificate (chain) and key.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// X509KeyPair cannot tell which file is wrong; name both.
		return nil, fmt.Errorf("tls cert_file %s / key_file %s: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

// loadCAPool reads a PEM bundle of CA certificates.
func loadCAPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tls client_ca_file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// serverConfig is the configuration the listener is built with.
func (f *tlsFiles) serverConfig(nextProtos []string) *tls.Config {
	c := baseConfig(nextProtos)
	c.GetCertificate = f.getCertificate
	if f.files.ClientCAFile != "" {
		c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return f.client.Load(), nil
		}
	}
	return c
}

// baseConfig holds the settings every handshake shares. The cipher suites
// and key exchanges are Go's defaults, which are modern and prefer X25519
// (and its post-quantum hybrid); naming them here would only freeze them.
func baseConfig(nextProtos []string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
	}
}

func (f *tlsFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cert.Load(), nil
}

// clientConfig builds the per-handshake configuration that verifies client
// certificates against pool.
func (f *tlsFiles) clientConfig(pool *x509.CertPool) *tls.Config {
	c := baseConfig(nil)
	c.GetCertificate = f.getCertificate
	c.ClientCAs = pool
	c.ClientAuth = tls.VerifyClientCertIfGiven
	if f.files.ClientAuth == "require" {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	// A session resumed from a ticket issued before a reload is checked
	// against this pool too: crypto/tls verifies the stored chain against
	// ClientCAs of the config in force when it resumes.
	return c
}

// Check does what Listen does before it opens a socket: validates cfg
// and reads the certificate, key and client CA files it names. It opens
// nothing, so that a configuration can be checked on a machine where it
// is not running (tern check-config).
func (cfg Config) Check() error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if c := cfg.withDefaults(); c.Type == TypeTLS || c.Type == TypeWSS {
		if _, err := loadTLSFiles(c.TLS); err != nil {
			return fmt.Errorf("%s: %w", cfg.name(), err)
		}
	}
	return nil
}

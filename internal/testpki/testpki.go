// Package testpki makes certificate authorities and certificates for
// tests, as PEM files in the test's temporary directory.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a certificate authority made for one test, writing PEM files into
// the test's temporary directory.
type PKI struct {
	t      testing.TB
	dir    string
	name   string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	CAFile string
	Pool   *x509.CertPool
}

var serial int64

// New makes a CA called name.
func New(t testing.TB, name string) *PKI {
	t.Helper()
	p := &PKI{t: t, dir: t.TempDir(), name: name}
	p.key = newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.key.PublicKey, p.key)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	if p.cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.CAFile = filepath.Join(p.dir, name+"-ca.pem")
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	p.Pool = x509.NewCertPool()
	p.Pool.AddCert(p.cert)
	return p
}

func nextSerial() *big.Int {
	serial++
	return big.NewInt(time.Now().UnixNano() + serial)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Issued is a certificate the CA signed, in files and in memory.
type Issued struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
	TLS               tls.Certificate
}

// issue signs a certificate from tmpl (serial, validity and key usage are
// filled in) and writes it as file.pem and file.key.
func (p *PKI) issue(file string, tmpl *x509.Certificate, usage x509.ExtKeyUsage) Issued {
	p.t.Helper()
	key := newKey(p.t)
	tmpl.SerialNumber = nextSerial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatalf("certificate %s: %v", file, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	is := Issued{CertFile: filepath.Join(p.dir, file+".pem"), KeyFile: filepath.Join(p.dir, file+".key")}
	writePEM(p.t, is.CertFile, "CERTIFICATE", der)
	writePEM(p.t, is.KeyFile, "PRIVATE KEY", keyDER)
	if is.Cert, err = x509.ParseCertificate(der); err != nil {
		p.t.Fatal(err)
	}
	if is.TLS, err = tls.LoadX509KeyPair(is.CertFile, is.KeyFile); err != nil {
		p.t.Fatal(err)
	}
	return is
}

// Server issues a server certificate for 127.0.0.1 and localhost.
func (p *PKI) Server(file, cn string) Issued {
	return p.issue(file, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}, x509.ExtKeyUsageServerAuth)
}

// Client issues a client certificate with the given names.
func (p *PKI) Client(file, cn string, dns, emails []string) Issued {
	return p.issue(file, &x509.Certificate{
		Subject:        pkix.Name{CommonName: cn},
		DNSNames:       dns,
		EmailAddresses: emails,
	}, x509.ExtKeyUsageClientAuth)
}

// ClientConfig trusts the CA and, with a certificate, presents it always
// (Go's client would keep quiet when the server's CA list does not name
// its issuer; other clients send it all the same).
func (p *PKI) ClientConfig(certs ...Issued) *tls.Config {
	c := &tls.Config{RootCAs: p.Pool, ServerName: "127.0.0.1"}
	if len(certs) > 0 {
		cert := certs[0].TLS
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
	}
	return c
}

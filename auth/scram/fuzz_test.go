package scram

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ternmq/tern/auth"
)

// FuzzServerFirst feeds arbitrary client-first-messages to a fresh
// exchange: it must never panic, must fail only with ErrBadCredentials,
// and when it accepts, its reply must be a server-first-message our client
// parser accepts and that extends the client's nonce.
func FuzzServerFirst(f *testing.F) {
	for _, s := range []string{
		vecClientFirst, "y,,n=user,r=abc", "n,,n=nobody,r=abc,x=ext", "n,,n=a=2Cb=3D,r=x",
		"p=tls-unique,,n=user,r=a", "n,a=x,n=u,r=a", "n,,m=x,n=u,r=a", "", "n,,", "n,,n=,r=",
	} {
		f.Add([]byte(s))
	}
	s := vecServer()
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := context.Background()
		ex, _ := s.Start(ctx, &auth.Client{})
		out, done, err := ex.Step(ctx, in)
		if err != nil {
			if !errors.Is(err, auth.ErrBadCredentials) || out != nil {
				t.Fatalf("Step(%q) = %q, %v", in, out, err)
			}
			return
		}
		if done {
			t.Fatalf("Step(%q) done after one message", in)
		}
		nonce, _, _, perr := parseServerFirst(string(out))
		if perr != nil {
			t.Fatalf("server-first %q for %q does not parse: %v", out, in, perr)
		}
		if !strings.HasSuffix(nonce, vecServerNonce) || len(nonce) == len(vecServerNonce) {
			t.Fatalf("server nonce %q", nonce)
		}
	})
}

// FuzzServerFinal feeds arbitrary client-final-messages to an exchange
// that has seen the RFC 7677 client-first-message: it must never panic,
// and it must succeed only for the one correct message (strict base64
// leaves no other spelling).
func FuzzServerFinal(f *testing.F) {
	for _, s := range []string{
		vecClientFinal, "c=biws,r=" + vecClientNonce + vecServerNonce + ",p=AAAA", "c=eSws,r=x,p=y",
		"c=biws,r=" + vecClientNonce + vecServerNonce + ",x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "",
	} {
		f.Add([]byte(s))
	}
	s := vecServer()
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := context.Background()
		ex, _ := s.Start(ctx, &auth.Client{})
		if _, _, err := ex.Step(ctx, []byte(vecClientFirst)); err != nil {
			t.Fatal(err)
		}
		out, done, err := ex.Step(ctx, in)
		switch {
		case err != nil:
			if !errors.Is(err, auth.ErrBadCredentials) || done || out != nil {
				t.Fatalf("Step(%q) = %q, %v, %v", in, out, done, err)
			}
		case !done || string(in) != vecClientFinal || string(out) != vecServerFinal:
			t.Fatalf("Step(%q) accepted: %q, %v", in, out, done)
		}
	})
}

// FuzzClientServerFirst covers the client's parser of server messages.
func FuzzClientServerFirst(f *testing.F) {
	for _, s := range []string{vecServerFirst, "r=a,s=AA==,i=4096,x=1", "m=1", "", "r=,s=,i="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		nonce, salt, iter, err := parseServerFirst(string(in))
		if err == nil && (!validNonce(nonce) || len(salt) == 0 || iter < MinIterations || iter > MaxIterations) {
			t.Fatalf("parseServerFirst(%q) = %q, %x, %d", in, nonce, salt, iter)
		}
		c := vecClient(vecUser, vecPassword)
		c.First()
		_ = c.Verify(in) // before Final: must error, not panic
	})
}

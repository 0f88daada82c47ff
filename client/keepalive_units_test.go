package client

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ternmq/tern/broker"
	mt "github.com/ternmq/tern/internal/mqtttest"
)

// KeepAlive is a time.Duration: 30 means 30ns, which used to become a
// silent 1 s keep alive. Values between 0 and 1 s are refused, by Connect
// and NewSession alike, with an error that says what was meant.
func TestKeepAliveBelowOneSecondRefused(t *testing.T) {
	b := mt.StartBroker(t, broker.Options{})
	for _, tc := range []struct {
		ka   time.Duration
		want string // in the error; "" means accepted
	}{
		{30, "KeepAlive 30ns: a time.Duration; did you mean 30 * time.Second?"},
		{1, "did you mean 1 * time.Second?"},
		{999 * time.Millisecond, "KeepAlive 999ms"},
		{time.Second, ""},
		{0, ""},
		{-1, ""},
	} {
		for _, tv := range versions {
			t.Run(tc.ka.String()+"/"+tv.name, func(t *testing.T) {
				o := Options{Address: b.Addr, Version: tv.v, ClientID: "ka", CleanStart: true, KeepAlive: tc.ka}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c, err := Connect(ctx, o)
				if c != nil {
					c.Close()
				}
				s, serr := NewSession(SessionOptions{Options: o})
				if s != nil {
					s.Close()
				}
				for _, err := range []error{err, serr} {
					switch {
					case tc.want == "" && err != nil:
						t.Fatalf("KeepAlive %d: %v", tc.ka, err)
					case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
						t.Fatalf("KeepAlive %d: error %v, want one saying %q", tc.ka, err, tc.want)
					}
				}
			})
		}
	}
}

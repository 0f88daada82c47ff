package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mt "github.com/ternmq/tern/internal/mqtttest"
	"github.com/ternmq/tern/packet"
)

// TestReloadOnSIGHUP: a changed password, ACL and limit take effect on
// SIGHUP while a connected client stays connected; a broken file is
// refused and the running configuration keeps serving.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tern.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	acl := filepath.Join(dir, "acl")
	writeACL := func(s string) {
		if err := os.WriteFile(acl, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeACL("user alice\ntopic readwrite a\ntopic readwrite b\ntopic write x\n")
	write("users:\n  alice: old\nacl_file: " + acl + "\nlimits:\n  max_subscriptions: 1\n")
	b := &brokerProc{addr: freeAddr(t), out: &mt.SyncBuffer{}, start0: time.Now()}
	b.args = []string{"serve", "--listen", b.addr, "--config", path, "--no-persist", "--log-level", "info", "--admin", ""}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() || testing.Verbose() {
			t.Log(b.out.String())
		}
	}()
	login := func(pw string) packet.ReasonCode {
		c := mt.Dial(t, b.addr, packet.V311)
		return c.ConnectWith(&packet.Connect{ClientID: "c-" + pw, CleanStart: true, UsernameFlag: true,
			Username: "alice", PasswordFlag: true, Password: []byte(pw)}).ReasonCode
	}
	stay := mt.Dial(t, b.addr, packet.V5)
	stay.ConnectWith(&packet.Connect{ClientID: "stay", CleanStart: true, KeepAlive: 60, UsernameFlag: true,
		Username: "alice", PasswordFlag: true, Password: []byte("old")})
	if ack := stay.Subscribe(1, 0, "a", "b"); ack.ReasonCodes[1] != packet.QuotaExceeded {
		t.Fatalf("second subscription granted under max_subscriptions 1: %v", ack.ReasonCodes)
	}
	publishY := func(id uint16) packet.ReasonCode {
		stay.Send(&packet.Publish{Topic: "y", QoS: 1, PacketID: id})
		return mt.Expect[*packet.Puback](stay).ReasonCode
	}
	if code := publishY(1); code != packet.NotAuthorized {
		t.Fatalf("publish to y before the ACL allows it: %v", code)
	}
	hup := func(logLine string) {
		t.Helper()
		before := strings.Count(b.out.String(), logLine)
		b.cmd.Process.Signal(syscall.SIGHUP)
		mt.Eventually(t, logLine, func() bool { return strings.Count(b.out.String(), logLine) > before })
	}

	writeACL("user alice\ntopic readwrite a\ntopic readwrite b\ntopic write x\ntopic write y\n")
	write("users:\n  alice: new\nacl_file: " + acl + "\nlimits:\n  max_subscriptions: 2\n")
	hup("configuration reloaded")
	if code := publishY(2); code != 0 {
		t.Fatalf("the connected client did not get the new ACL: PUBACK %v", code)
	}
	if code := login("old"); code != packet.RefusedBadUsernamePassword {
		t.Fatalf("old password after reload: CONNACK %v", code)
	}
	if code := login("new"); code != packet.Accepted {
		t.Fatalf("new password after reload: CONNACK %v", code)
	}
	if ack := stay.Subscribe(2, 0, "b"); ack.ReasonCodes[0] != 0 {
		t.Fatalf("the connected client did not get the new limit: %v", ack.ReasonCodes)
	}

	write("users: [this is not a map\n")
	hup("reload refused")
	if code := login("new"); code != packet.Accepted {
		t.Fatalf("after a refused reload: CONNACK %v", code)
	}
	stay.Send(&packet.Pingreq{})
	mt.Expect[*packet.Pingresp](stay)
}

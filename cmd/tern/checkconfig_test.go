package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	acl := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := acl("good.acl", "user alice\ntopic readwrite alice/#\n")
	token := acl("admin-token", "tok\n")
	bad := acl("bad.acl", "user alice\ntopic readwrite alice/#\ntopic sometimes x/#\n")
	for _, tc := range []struct {
		name, text string
		want       []string // in stderr; none: ok
	}{
		{"good", "listeners:\n  - address: 127.0.0.1:1883\nsys_interval: 5s\nacl_file: " + good + "\nlimits:\n  connect_timeout: 3s\n", nil},
		{"unknown key", "listeners:\n  - address: 127.0.0.1:1883\n    adress: typo\n", []string{"line 3", "adress"}},
		{"bad duration", "limits:\n  connect_timeout: soon\n", []string{"line 2", "soon"}},
		{"bad ACL line", "acl_file: " + bad + "\n", []string{"bad.acl:3", "sometimes"}},
		{"missing password file", "password_file: " + filepath.Join(dir, "nope") + "\n", []string{"password_file", "nope"}},
		{"bad listener and limits at once", "listeners:\n  - address: 127.0.0.1:8883\n    type: tls\nlimits:\n  queue_full_policy: sideways\n",
			[]string{"cert_file is required", "queue_full_policy"}},
		{"missing certificate", "listeners:\n  - address: 127.0.0.1:8883\n    type: tls\n    tls:\n      cert_file: " + filepath.Join(dir, "c.pem") +
			"\n      key_file: " + filepath.Join(dir, "k.pem") + "\n", []string{"c.pem"}},
		{"bad log format", "log_format: xml\n", []string{"xml"}},
		{"bad durability", "storage:\n  durability: eventually\n", []string{"eventually"}},
		{"admin with a token file", "admin:\n  address: 127.0.0.1:18830\n  token_file: " + token + "\n", nil},
		{"admin on any address with a token file", "admin:\n  address: 0.0.0.0:18830\n  token_file: " + token + "\n", nil},
		{"missing admin token file", "admin:\n  token_file: " + filepath.Join(dir, "no-token") + "\n", []string{"admin.token_file", "no-token"}},
		{"admin on any address without credentials", "admin:\n  address: 0.0.0.0:18830\n", []string{"not a loopback address"}},
		{"webhooks", "webhooks:\n  - url: https://hooks.example/mqtt\n    events: [client.connected, message.published]\n" +
			"    topics: [\"sensors/#\"]\n    headers: {Authorization: \"Bearer x\"}\n    timeout: 5s\n    queue_size: 100\n", nil},
		{"webhook without a scheme", "webhooks:\n  - url: hooks.example/mqtt\n", []string{"webhooks[0]", "hooks.example/mqtt", "http or https"}},
		{"webhook bad event and filter", "webhooks:\n  - url: http://h/\n  - url: http://h/\n    events: [message.lost]\n    topics: [\"a/#/b\"]\n",
			[]string{"webhooks[1]", "message.lost", "a/#/b"}},
		{"webhook unknown key", "webhooks:\n  - url: http://h/\n    timeot: 5s\n", []string{"line 3", "timeot"}},
		{"admin users without a password file", "admin:\n  users: [root]\n", []string{"admin.users", "password_file"}},
		{"cluster", "cluster:\n  node: n1\n  listen: 127.0.0.1:7001\n  peers: [127.0.0.1:7002, 127.0.0.1:7003]\n  replicas: 3\n", nil},
		{"cluster over NATS", "cluster:\n  node: n1\n  nats_urls: [nats://127.0.0.1:4222, tls://nats.example:4222]\n  user: tern\n  password: x\n" +
			"  tls: {ca_file: " + token + "}\n", []string{"line 6", "tls.ca_file", "no PEM certificate"}},
		{"cluster node name", "log_level: info\ncluster:\n  node: \"node 1\"\n  listen: 127.0.0.1:7001\n", []string{"line 3", "node name \"node 1\""}},
		{"cluster without listen", "cluster:\n  node: n1\n  peers: [127.0.0.1:7002]\n", []string{"line 1", "listen"}},
		{"cluster bad peer", "cluster:\n  node: n1\n  listen: 127.0.0.1:7001\n  peers:\n    - 127.0.0.1:7002\n    - nohost\n", []string{"line 6", "nohost"}},
		{"cluster replicas", "cluster:\n  node: n1\n  nats_urls: [nats://h:4222]\n  replicas: 7\n", []string{"line 4", "replicas 7"}},
		{"cluster credentials without nats_urls", "cluster:\n  node: n1\n  listen: 127.0.0.1:7001\n  token: t\n", []string{"line 4", "nats_urls"}},
		{"cluster bad NATS URL", "cluster:\n  node: n1\n  nats_urls:\n    - http://h:4222\n", []string{"line 4", "scheme \"http\""}},
		{"cluster unknown key", "cluster:\n  node: n1\n  peer: [127.0.0.1:7002]\n", []string{"line 3", "peer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.text)
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"check-config", path}, nil, &out, &errb)
			if tc.want == nil {
				if code != 0 || out.String() != "ok\n" {
					t.Fatalf("code %d, stdout %q, stderr %q; want 0 and ok", code, out.String(), errb.String())
				}
				return
			}
			if code != 1 || out.Len() != 0 {
				t.Fatalf("code %d, stdout %q; want 1 and nothing", code, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q does not mention %q", errb.String(), w)
				}
			}
			if !strings.Contains(errb.String(), path) {
				t.Errorf("stderr %q does not name the file", errb.String())
			}
		})
	}
	// Nothing to check: usage.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"check-config"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "Usage") {
		t.Fatalf("no file: code %d, stderr %q", code, errb.String())
	}
}

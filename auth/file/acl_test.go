package file

import (
	"os"
	"strings"
	"testing"

	"github.com/ternmq/tern/auth"
)

const testACL = `# Anonymous clients.
topic read public/#
topic deny public/secret

user alice
topic readwrite alice/#
topic read shared/+/data
topic write cmd/alice
topic deny alice/private/#
topic read $SYS/broker/clients/#

user bob
topic read #
topic write bob
topic deny private/#

client sensor-17
topic write sensors/17/#

	pattern readwrite users/%u/#
pattern write devices/%c/status
pattern read in/dev-%c/x
pattern read %u/inbox/#
pattern deny %c/blocked

user with space
topic read spaced out/#
`

func anon(id string) *auth.Client { return &auth.Client{ClientID: id} }
func named(name, id string) *auth.Client {
	return &auth.Client{ClientID: id, Username: name, UsernameFlag: true}
}

func TestACL(t *testing.T) {
	acl, err := LoadACL(writeFile(t, "acl", testACL))
	if err != nil {
		t.Fatal(err)
	}
	const pub, sub, read = auth.Publish, auth.Subscribe, auth.Read
	alice, bob := named("alice", "c-alice"), named("bob", "c-bob")
	cases := []struct {
		name   string
		c      *auth.Client
		action auth.Action
		topic  string
		want   bool
	}{
		// The section before any user line: anonymous clients only.
		{"anonymous read", anon("a1"), read, "public/news", true},
		{"anonymous subscribe", anon("a1"), sub, "public/#", true},
		{"anonymous read only", anon("a1"), pub, "public/news", false},
		{"anonymous deny", anon("a1"), read, "public/secret", false},
		{"deny covering the filter refuses it", anon("a1"), sub, "public/secret", false},
		{"deny covering part of the filter: withheld at delivery", anon("a1"), sub, "public/+", true},
		{"anonymous no rule", anon("a1"), read, "alice/x", false},
		{"anonymous section is not for users", alice, read, "public/news", false},

		// readwrite, read, write per user.
		{"readwrite publish", alice, pub, "alice/x", true},
		{"readwrite read", alice, read, "alice/x", true},
		{"readwrite subscribe", alice, sub, "alice/#", true},
		{"readwrite parent level", alice, read, "alice", true},
		{"read subscribe exact", alice, sub, "shared/x/data", true},
		{"read subscribe same filter", alice, sub, "shared/+/data", true},
		{"read does not cover wider filter", alice, sub, "shared/#", false},
		{"read does not cover other level", alice, sub, "shared/+/+", false},
		{"read is not write", alice, pub, "shared/x/data", false},
		{"write publish", alice, pub, "cmd/alice", true},
		{"write is not read", alice, read, "cmd/alice", false},
		{"write is not subscribe", alice, sub, "cmd/alice", false},
		{"other user's rules", alice, read, "bob", false},

		// A matching deny beats any allow.
		{"deny beats readwrite publish", alice, pub, "alice/private/x", false},
		{"deny beats readwrite read parent", alice, read, "alice/private", false},
		{"deny beats readwrite subscribe", alice, sub, "alice/private/+", false},
		{"partial deny keeps the wide subscription", alice, sub, "alice/#", true},
		{"deny beats #", bob, read, "private/x", false},
		{"# with partial deny", bob, sub, "#", true},

		// [MQTT-4.7.2-1] '$' topics only through rules written with '$'.
		{"$SYS explicit read", alice, read, "$SYS/broker/clients/connected", true},
		{"$SYS explicit subscribe", alice, sub, "$SYS/broker/clients/#", true},
		{"$SYS wider than granted", alice, sub, "$SYS/#", false},
		{"# never grants $SYS read", bob, read, "$SYS/broker/load", false},
		{"# never grants $SYS subscribe", bob, sub, "$SYS/#", false},
		{"# grants everything else", bob, read, "any/thing", true},
		{"# subscribe", bob, sub, "#", true},
		{"# subscribe +", bob, sub, "+/broker", true},
		{"exact write", bob, pub, "bob", true},
		{"exact write only", bob, pub, "bob/x", false},
		{"anonymous deny is not bob's", bob, read, "public/secret", true},

		// Shared subscriptions are judged by their filter.
		{"shared allowed", alice, sub, "$share/g/alice/#", true},
		{"shared denied", alice, sub, "$share/g/bob", false},
		{"shared #", bob, sub, "$share/workers/#", true},
		{"shared $SYS", bob, sub, "$share/g/$SYS/#", false},

		// Client sections, for anonymous and named clients alike.
		{"client section", anon("sensor-17"), pub, "sensors/17/temp", true},
		{"client section other topic", anon("sensor-17"), pub, "sensors/18/temp", false},
		{"client and anonymous sections add up", anon("sensor-17"), read, "public/news", true},
		{"client section with a user", named("carol", "sensor-17"), pub, "sensors/17/temp", true},
		{"no section for this client", named("carol", "sensor-18"), pub, "sensors/17/temp", false},

		// Patterns: %u and %c.
		{"%u pattern", alice, pub, "users/alice/x", true},
		{"%u pattern other user", alice, read, "users/bob/x", false},
		{"%u pattern for a user without section", named("dave", "d"), sub, "users/dave/#", true},
		{"%u pattern never matches anonymous", anon("a1"), sub, "users/+/#", false},
		{"%u pattern anonymous literal", anon("a1"), read, "users//x", false},
		{"%c pattern", alice, pub, "devices/c-alice/status", true},
		{"%c pattern other id", alice, pub, "devices/c-bob/status", false},
		{"%c pattern for anonymous", anon("a1"), pub, "devices/a1/status", true},
		{"%c inside a level", alice, read, "in/dev-c-alice/x", true},
		{"%c inside a level, wrong prefix", alice, read, "in/c-alice/x", false},
		{"%u leading level", named("dave", "d"), read, "dave/inbox/1", true},
		{"deny pattern beats #", bob, read, "c-bob/blocked", false},

		// Substituted values are never wildcards, levels or '$'.
		{"username + is not a wildcard", named("+", "p"), sub, "users/+/#", false},
		{"username # is not a wildcard", named("#", "h"), sub, "users/#", false},
		{"username with / is not levels", named("a/b", "s"), pub, "users/a/b/x", false},
		{"empty username is not a level", named("", "e"), read, "/inbox/x", false},
		{"username $SYS grants no $SYS", named("$SYS", "sys"), read, "$SYS/inbox/x", false},
		{"client id with / is not levels", anon("a/b"), pub, "devices/a/b/status", false},
		{"unsafe id fails a deny pattern closed", anon("a/b"), read, "public/news", false},
		{"unsafe id fails a deny pattern closed for users", named("bob", "+"), read, "any/thing", false},

		// Names and filters with spaces.
		{"user name with space", named("with space", "w"), read, "spaced out/x", true},

		// Nothing matches: denied.
		{"unknown user", named("zed", "z"), read, "x", false},
		{"unknown action", alice, auth.Action(0), "alice/x", false},
		{"nil client", nil, read, "public/news", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := acl.Authorize(tc.c, tc.action, tc.topic); got != tc.want {
				t.Fatalf("Authorize(%+v, %d, %q) = %v, want %v", tc.c, tc.action, tc.topic, got, tc.want)
			}
		})
	}
}

func TestACLParseErrors(t *testing.T) {
	cases := []struct{ name, text, wantErr string }{
		{"unknown keyword", "topic read a\n\ntopik read b\n", `acl:3: unknown keyword "topik"`},
		{"bad access", "user a\ntopic wirte a/b\n", `acl:2: topic wirte a/b: bad access type "wirte"`},
		{"missing filter", "topic read\n", `acl:1: topic read: missing filter`},
		{"missing everything", "pattern\n", `acl:1: pattern: missing filter`},
		{"invalid filter", "topic read a/#/b\n", `acl:1: topic read a/#/b: invalid filter`},
		{"wildcard inside level", "topic deny a+\n", `acl:1: topic deny a+: invalid filter`},
		{"invalid pattern", "pattern read %u#\n", `acl:1: pattern read %u#: invalid filter`},
		{"unknown substitution", "pattern read users/%x\n", `acl:1: pattern read users/%x: "%x": unknown substitution`},
		{"dangling %", "pattern read users/%\n", `unknown substitution "%"`},
		{"shared filter", "topic read $share/g/a\n", "acl:1: topic read $share/g/a: shared subscription filter"},
		{"user without name", "user\n", `acl:1: user: missing name`},
		{"client without name", "client  \n", `acl:1: client: missing name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadACL(writeFile(t, "acl", tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestACLParse(t *testing.T) {
	// Tabs separate like spaces; "%" is literal in topic lines; a section
	// may be opened twice; rules may come with a filter that has spaces.
	text := "topic\tread\ta/%u\n" +
		"user alice\ntopic write x\nuser bob\ntopic read y\nuser alice\ntopic read z\n" +
		"topic readwrite two words\ntopic write read\n"
	acl, err := LoadACL(writeFile(t, "acl", text))
	if err != nil {
		t.Fatal(err)
	}
	alice := named("alice", "a")
	cases := []struct {
		c      *auth.Client
		action auth.Action
		topic  string
		want   bool
	}{
		{anon("a"), auth.Read, "a/%u", true},
		{anon("a"), auth.Read, "a/x", false},
		{alice, auth.Publish, "x", true},
		{alice, auth.Read, "z", true},
		{alice, auth.Read, "y", false},
		{alice, auth.Publish, "two words", true},
		{alice, auth.Publish, "read", true},
		{alice, auth.Read, "read", false},
	}
	for _, tc := range cases {
		if got := acl.Authorize(tc.c, tc.action, tc.topic); got != tc.want {
			t.Errorf("Authorize(%s, %d, %q) = %v, want %v", tc.c.Username, tc.action, tc.topic, got, tc.want)
		}
	}
	// An empty file denies everything.
	empty, err := LoadACL(writeFile(t, "acl", "# nothing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if empty.Authorize(alice, auth.Read, "x") {
		t.Fatal("empty ACL allowed a read")
	}
}

func TestACLReload(t *testing.T) {
	path := writeFile(t, "acl", "user alice\ntopic read a/#\n")
	acl, err := LoadACL(path)
	if err != nil {
		t.Fatal(err)
	}
	alice := named("alice", "c1")
	if !acl.Authorize(alice, auth.Subscribe, "a/#") || acl.Authorize(alice, auth.Subscribe, "b/#") {
		t.Fatal("initial rules not in force")
	}
	// Success: the new rules replace the old ones whole.
	if err := os.WriteFile(path, []byte("user alice\ntopic read b/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := acl.Reload(); err != nil {
		t.Fatal(err)
	}
	if acl.Authorize(alice, auth.Subscribe, "a/#") || !acl.Authorize(alice, auth.Subscribe, "b/#") {
		t.Fatal("reloaded rules not in force")
	}
	// Failure: the error names file and line; the old rules keep serving.
	if err := os.WriteFile(path, []byte("user alice\ntopic read c/#\ntopic maybe d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := acl.Reload(); err == nil || !strings.Contains(err.Error(), path+":3:") {
		t.Fatalf("Reload of a bad file: %v, want an error naming %s:3", err, path)
	}
	if !acl.Authorize(alice, auth.Subscribe, "b/#") || acl.Authorize(alice, auth.Subscribe, "c/#") {
		t.Fatal("a failed reload changed the rules")
	}
}

func BenchmarkACLRead(b *testing.B) {
	dir := b.TempDir()
	path := dir + "/acl"
	if err := os.WriteFile(path, []byte(testACL), 0o600); err != nil {
		b.Fatal(err)
	}
	acl, err := LoadACL(path)
	if err != nil {
		b.Fatal(err)
	}
	c := named("alice", "c-alice")
	b.ReportAllocs()
	for b.Loop() {
		if !acl.Authorize(c, auth.Read, "users/alice/sensors/temp") {
			b.Fatal("denied")
		}
	}
}

// The example in the package documentation is a valid file.
func TestACLDocExample(t *testing.T) {
	text := `# Rules before the first section apply to anonymous clients (no username).
topic read public/#

# Rules for the user named alice.
user alice
topic readwrite alice/#
topic deny alice/secret

# Rules for the client id sensor-17.
client sensor-17
topic write sensors/17/#

# Pattern lines apply to every client, wherever they are written.
pattern readwrite users/%u/#
pattern write devices/%c/status
`
	acl, err := LoadACL(writeFile(t, "acl", text))
	if err != nil {
		t.Fatal(err)
	}
	if !acl.Authorize(named("alice", "x"), auth.Publish, "users/alice/a") || acl.Authorize(named("alice", "x"), auth.Read, "alice/secret") {
		t.Fatal("the documented example does not do what it says")
	}
}

// Reload swaps the table under running checks without a race.
func TestACLReloadConcurrent(t *testing.T) {
	path := writeFile(t, "acl", "user alice\ntopic read a/#\n")
	acl, err := LoadACL(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			acl.Authorize(named("alice", "c"), auth.Read, "a/b")
		}
	}()
	for range 20 {
		if err := acl.Reload(); err != nil {
			t.Error(err)
		}
	}
	<-done
}

package file

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ternmq/tern/auth"
)

const idACL = `# Anonymous clients: only anon-... ids, never anon-admin.
clientid anon-*
clientid deny anon-admin
topic read public/#

user alice
clientid alice
clientid kitchen-*-sensor
topic readwrite alice/#

# bob has topic rules but no clientid line: the patterns decide.
user bob
topic read #

user carol
clientid deny *-test

user %u
clientid %u-lit

user star*
clientid star-*

user admin
clientid *

# A client section grants no id.
client shared-1
topic write shared/#

user with space
clientid allow my id *

pattern clientid %u-*
pattern clientid deny %u-admin
pattern clientid deny root
`

func TestACLClientID(t *testing.T) {
	acl, err := LoadACL(writeFile(t, "acl", idACL))
	if err != nil {
		t.Fatal(err)
	}
	const def, allowed, denied = auth.ClientIDDefault, auth.ClientIDAllowed, auth.ClientIDDenied
	cases := []struct {
		name string
		c    *auth.Client
		want auth.ClientIDDecision
	}{
		// The anonymous section.
		{"anonymous granted", anon("anon-1"), allowed},
		{"anonymous empty run", anon("anon-"), allowed},
		{"anonymous not granted", anon("alice"), denied},
		{"anonymous deny beats allow", anon("anon-admin"), denied},
		{"anonymous, another id", anon("-x"), denied},
		{"pattern without %u applies to anonymous", anon("root"), denied},

		// A user section, with the patterns.
		{"exact id", named("alice", "alice"), allowed},
		{"exact id, longer", named("alice", "alice2"), denied},
		{"middle *", named("alice", "kitchen-3-sensor"), allowed},
		{"middle * matches any run", named("alice", "kitchen-a-b-sensor"), allowed},
		{"middle * empty", named("alice", "kitchen--sensor"), allowed},
		{"middle * wrong suffix", named("alice", "kitchen-3-sensors"), denied},
		{"prefix and suffix do not overlap", named("alice", "kitchen-sensor"), denied},
		{"pattern %u-*", named("alice", "alice-phone"), allowed},
		{"deny pattern %u-admin", named("alice", "alice-admin"), denied},
		{"deny pattern for everyone", named("alice", "root"), denied},
		{"another user's id", named("alice", "bob-1"), denied},
		{"anonymous section is not for users", named("alice", "anon-1"), denied},

		// Only patterns.
		{"user without clientid lines: pattern", named("bob", "bob-1"), allowed},
		{"user without clientid lines: no match", named("bob", "alice-1"), denied},
		{"user without section", named("dave", "dave-x"), allowed},
		{"user without section, no match", named("dave", "x"), denied},

		// Deny lines alone do not restrict; patterns still do.
		{"deny section line", named("carol", "carol-test"), denied},
		{"deny section line, pattern allows", named("carol", "carol-1"), allowed},

		// Substitution: never a wildcard, never empty.
		{"%u literal in a user section", named("%u", "%u-lit"), allowed},
		{"%u user by pattern", named("%u", "%u-1"), allowed},
		{"username with * is not a wildcard", named("a*", "a-1"), denied},
		{"username with * is not substituted", named("a*", "a*-1"), denied},
		{"username with * fails a deny pattern closed", named("star*", "star-1"), denied},
		{"empty username is not substituted", named("", "-1"), denied},
		{"empty username, any id", named("", "x"), denied},

		// The all-ids grant; glob with spaces.
		{"* grants every id", named("admin", "alice-1"), allowed},
		{"* grants the empty id", named("admin", ""), allowed},
		{"* does not beat a deny", named("admin", "root"), denied},
		{"glob with spaces", named("with space", "my id 7"), allowed},

		// Client sections are no grant.
		{"client section id", named("bob", "shared-1"), denied},
		{"client section id, anonymous", anon("shared-1"), denied},

		{"nil client", nil, denied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := acl.AuthorizeClientID(context.Background(), tc.c)
			if err != nil || got != tc.want {
				t.Fatalf("AuthorizeClientID(%+v) = %v, %v, want %v", tc.c, got, err, tc.want)
			}
		})
	}
}

// With no clientid rule that applies, the decision is the default: the
// broker's ownership check decides.
func TestACLClientIDDefault(t *testing.T) {
	cases := []struct {
		name, text string
		c          *auth.Client
	}{
		{"no clientid lines", testACL, named("alice", "c-alice")},
		{"no clientid lines, anonymous", testACL, anon("x")},
		{"empty file", "", named("alice", "x")},
		{"another user's lines", "user bob\nclientid bob-*\n", named("alice", "bob-1")},
		{"anonymous lines, a user", "clientid anon-*\n", named("alice", "x")},
		{"user lines, anonymous", "user bob\nclientid bob-*\n", anon("bob-1")},
		{"%u pattern, anonymous", "pattern clientid %u-*\n", anon("x")},
		{"deny only, no match", "pattern clientid deny root\n", named("alice", "x")},
		{"client section only", "client x\ntopic read a\n", anon("x")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			acl, err := LoadACL(writeFile(t, "acl", tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := acl.AuthorizeClientID(context.Background(), tc.c); got != auth.ClientIDDefault || err != nil {
				t.Fatalf("AuthorizeClientID = %v, %v, want default", got, err)
			}
		})
	}
}

func TestIDGlob(t *testing.T) {
	cases := []struct {
		glob, u, id string
		want        bool
	}{
		{"a", "", "a", true},
		{"a", "", "ab", false},
		{"a", "", "", false},
		{"*", "", "", true},
		{"*", "", "anything", true},
		{"**", "", "x", true},
		{"a*", "", "a", true},
		{"a*", "", "ba", false},
		{"*a", "", "ba", true},
		{"*a", "", "ab", false},
		{"a*a", "", "a", false},
		{"a*a", "", "aa", true},
		{"a*b*c", "", "abc", true},
		{"a*b*c", "", "axxbyyc", true},
		{"a*b*c", "", "acb", false},
		{"a*b*c", "", "abcbc", true},
		{"*ab*ab", "", "xabyab", true},
		{"*ab*ab", "", "xab", false},
		{"%u", "alice", "alice", true},
		{"%u-*", "alice", "alice-1", true},
		{"%u-*", "alice", "alice", false},
		{"*-%u", "alice", "x-alice", true},
		{"x*%u*y", "ab", "x1ab2y", true},
		{"x*%u*y", "ab", "x1a2by", false},
		{"%u%u", "ab", "abab", true},
		{"%u%u", "ab", "ab", false},
	}
	for _, tc := range cases {
		r, err := parseIDRule(tc.glob, true)
		if err != nil {
			t.Errorf("%q: %v", tc.glob, err)
			continue
		}
		if got := r.match(tc.id, tc.u); got != tc.want {
			t.Errorf("%q (u=%q) match %q = %v, want %v", tc.glob, tc.u, tc.id, got, tc.want)
		}
	}
	// Outside patterns '%' is literal.
	r, err := parseIDRule("100%u*", false)
	if err != nil || !r.match("100%u-1", "x") || r.match("100x-1", "x") {
		t.Fatalf("literal %%: %v", err)
	}
}

func TestACLClientIDParseErrors(t *testing.T) {
	cases := []struct{ name, text, wantErr string }{
		{"missing glob", "clientid\n", `acl:1: clientid: missing client id glob`},
		{"missing glob after deny", "user a\nclientid deny\n", `acl:2: clientid deny: missing glob after "deny"`},
		{"missing glob after allow", "clientid allow \n", `acl:1: clientid allow: missing glob after "allow"`},
		{"bad access", "clientid read a-*\n", `acl:1: clientid read a-*: bad access type "read": want allow or deny`},
		{"in a client section", "client c1\nclientid c1\n", `acl:2: clientid in the section of client "c1"`},
		{"pattern without glob", "pattern clientid\n", `acl:1: pattern clientid: missing client id glob`},
		{"pattern deny without glob", "pattern clientid deny\n", `acl:1: pattern clientid deny: missing glob after "deny"`},
		{"pattern %c", "pattern clientid %c\n", `acl:1: pattern clientid %c: unknown substitution "%c" in a client id pattern, want %u`},
		{"pattern dangling %", "\n\npattern clientid a%\n", `acl:3: pattern clientid a%: unknown substitution "%"`},
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

func TestACLClientIDReload(t *testing.T) {
	path := writeFile(t, "acl", "user alice\nclientid a-*\n")
	acl, err := LoadACL(path)
	if err != nil {
		t.Fatal(err)
	}
	alice := func(id string) auth.ClientIDDecision {
		d, _ := acl.AuthorizeClientID(context.Background(), named("alice", id))
		return d
	}
	if alice("a-1") != auth.ClientIDAllowed || alice("b-1") != auth.ClientIDDenied {
		t.Fatal("initial rules not in force")
	}
	// Success: the new rules replace the old ones whole.
	if err := os.WriteFile(path, []byte("user alice\nclientid b-*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := acl.Reload(); err != nil {
		t.Fatal(err)
	}
	if alice("a-1") != auth.ClientIDDenied || alice("b-1") != auth.ClientIDAllowed {
		t.Fatal("reloaded rules not in force")
	}
	// Failure: the old rules keep serving.
	if err := os.WriteFile(path, []byte("user alice\nclientid c-*\npattern clientid %x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := acl.Reload(); err == nil || !strings.Contains(err.Error(), path+":3:") {
		t.Fatalf("Reload of a bad file: %v, want an error naming %s:3", err, path)
	}
	if alice("b-1") != auth.ClientIDAllowed || alice("c-1") != auth.ClientIDDenied {
		t.Fatal("a failed reload changed the rules")
	}
	// Rules removed: back to the default.
	if err := os.WriteFile(path, []byte("user alice\ntopic read a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := acl.Reload(); err != nil {
		t.Fatal(err)
	}
	if alice("b-1") != auth.ClientIDDefault {
		t.Fatal("removed rules still in force")
	}
}

// The topic rules do not see clientid lines, nor clientid rules topic
// lines.
func TestACLClientIDKeepsTopicsApart(t *testing.T) {
	acl, err := LoadACL(writeFile(t, "acl", idACL))
	if err != nil {
		t.Fatal(err)
	}
	if !acl.Authorize(named("alice", "x"), auth.Publish, "alice/a") || acl.Authorize(named("alice", "x"), auth.Read, "alice-x") {
		t.Fatal("topic rules changed by clientid lines")
	}
	// A topic named "clientid" still has a way to be written.
	acl, err = LoadACL(writeFile(t, "acl", "pattern readwrite clientid\n"))
	if err != nil || !acl.Authorize(anon("x"), auth.Publish, "clientid") {
		t.Fatalf("topic clientid: %v", err)
	}
}

func TestACLClientIDAllocs(t *testing.T) {
	acl, err := LoadACL(writeFile(t, "acl", idACL))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []*auth.Client{named("alice", "kitchen-3-sensor"), named("bob", "alice-1"), anon("anon-1"), named("zed", "zed-1")} {
		if n := testing.AllocsPerRun(100, func() { acl.AuthorizeClientID(ctx, c) }); n != 0 {
			t.Errorf("%s/%s: %v allocations", c.Username, c.ClientID, n)
		}
	}
}

func BenchmarkACLClientID(b *testing.B) {
	path := b.TempDir() + "/acl"
	if err := os.WriteFile(path, []byte(idACL), 0o600); err != nil {
		b.Fatal(err)
	}
	acl, err := LoadACL(path)
	if err != nil {
		b.Fatal(err)
	}
	c, ctx := named("alice", "alice-phone"), context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := acl.AuthorizeClientID(ctx, c); d != auth.ClientIDAllowed {
			b.Fatal(d)
		}
	}
}

// The example in the package documentation is a valid file and does what
// it says.
func TestACLClientIDDocExample(t *testing.T) {
	text := `# Anonymous clients may use anon-... ids only.
clientid anon-*

user alice
clientid alice
clientid kitchen-*

# Any id, and so any session: an operator's grant.
user monitor
clientid *

# Every user may use ids starting with their name and a dash.
pattern clientid %u-*
# Nobody may use these.
pattern clientid deny admin-*
`
	acl, err := LoadACL(writeFile(t, "acl", text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    *auth.Client
		want auth.ClientIDDecision
	}{
		{anon("anon-1"), auth.ClientIDAllowed},
		{anon("alice"), auth.ClientIDDenied},
		{named("alice", "kitchen-2"), auth.ClientIDAllowed},
		{named("alice", "alice-2"), auth.ClientIDAllowed},
		{named("alice", "bob-2"), auth.ClientIDDenied},
		{named("bob", "bob-2"), auth.ClientIDAllowed},
		{named("monitor", "alice"), auth.ClientIDAllowed},
		{named("monitor", "admin-1"), auth.ClientIDDenied},
		{named("admin", "admin-1"), auth.ClientIDDenied},
		{named("ann", "ann-b-1"), auth.ClientIDAllowed}, // the caveat
	} {
		if got, _ := acl.AuthorizeClientID(context.Background(), tc.c); got != tc.want {
			t.Errorf("%s uses %q: %v, want %v", tc.c.Identity(), tc.c.ClientID, got, tc.want)
		}
	}
}

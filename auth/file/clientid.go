package file

import (
	"context"
	"fmt"
	"strings"

	"github.com/ternmq/tern/auth"
)

var _ auth.ConnectAuthorizer = (*ACL)(nil)

// idRule is one compiled "clientid" or "pattern clientid" line: a glob
// over client ids, cut at its '*'s into runs of literal pieces. A run may
// hold %u (part.v == 'u'), which is substituted when matching, in place,
// so that a check allocates nothing.
type idRule struct {
	deny  bool
	line  int
	runs  [][]part // len(runs) == number of '*' + 1; runs may be empty
	needU bool     // the glob uses %u
}

// parseIDRule parses "[allow|deny] <glob>" after "clientid"; with pattern,
// %u is the username.
func parseIDRule(s string, pattern bool) (idRule, error) {
	if s == "" {
		return idRule{}, fmt.Errorf("missing client id glob")
	}
	var r idRule
	g := s
	first, rest := cutSpace(s)
	switch {
	case (first == "allow" || first == "deny") && rest == "":
		return idRule{}, fmt.Errorf("missing glob after %q (an id named %q needs allow written: clientid allow %s)", first, first, first)
	case first == "allow" || first == "deny":
		r.deny, g = first == "deny", rest
	case rest != "":
		return idRule{}, fmt.Errorf("bad access type %q: want allow or deny (a glob with spaces needs it written)", first)
	}
	run := []part{}
	lit := func(t string) {
		if t != "" {
			run = append(run, part{text: t})
		}
	}
	special := "*" // '%' is literal outside patterns, as in topic lines
	if pattern {
		special = "*%"
	}
	for {
		i := strings.IndexAny(g, special)
		if i < 0 {
			lit(g)
			break
		}
		lit(g[:i])
		if g[i] == '*' {
			r.runs = append(r.runs, run)
			run = []part{}
			g = g[i+1:]
			continue
		}
		if i+1 >= len(g) || g[i+1] != 'u' {
			return idRule{}, fmt.Errorf("unknown substitution %q in a client id pattern, want %%u", g[i:min(i+2, len(g))])
		}
		run = append(run, part{v: 'u'})
		r.needU = true
		g = g[i+2:]
	}
	r.runs = append(r.runs, run)
	return r, nil
}

// runLen is the length of run with u substituted.
func runLen(run []part, u string) int {
	n := 0
	for _, p := range run {
		if p.v == 'u' {
			n += len(u)
		} else {
			n += len(p.text)
		}
	}
	return n
}

// hasRunPrefix reports whether s starts with run, u substituted.
func hasRunPrefix(s string, run []part, u string) bool {
	for _, p := range run {
		t := p.text
		if p.v == 'u' {
			t = u
		}
		if !strings.HasPrefix(s, t) {
			return false
		}
		s = s[len(t):]
	}
	return true
}

// match reports whether id matches the glob, u substituted for %u. The
// first run must start id and the last end it; the runs between are
// found leftmost first, which is enough when '*' is the only wildcard.
func (r *idRule) match(id, u string) bool {
	first := r.runs[0]
	n := runLen(first, u)
	if !hasRunPrefix(id, first, u) {
		return false
	}
	if len(r.runs) == 1 {
		return n == len(id)
	}
	id = id[n:]
	for _, run := range r.runs[1 : len(r.runs)-1] {
		n := runLen(run, u)
		k := 0
		for ; k+n <= len(id) && !hasRunPrefix(id[k:], run, u); k++ {
		}
		if k+n > len(id) {
			return false
		}
		id = id[k+n:]
	}
	last := r.runs[len(r.runs)-1]
	n = runLen(last, u)
	return n <= len(id) && hasRunPrefix(id[len(id)-n:], last, u)
}

// AuthorizeClientID decides whether c may use its client id, by the
// clientid rules of c's section (its user section, or the anonymous one)
// and the clientid patterns; see the package documentation. Client
// sections grant no ids. It allocates nothing and never blocks.
func (a *ACL) AuthorizeClientID(_ context.Context, c *auth.Client) (auth.ClientIDDecision, error) {
	if c == nil {
		return auth.ClientIDDenied, nil
	}
	tb := a.table.Load()
	d := idDecision{id: c.ClientID, u: c.Username, hasU: c.UsernameFlag,
		badU: c.UsernameFlag && (c.Username == "" || strings.Contains(c.Username, "*"))}
	if c.UsernameFlag {
		d.check(tb.userIDs[c.Username])
	} else {
		d.check(tb.anonymousIDs)
	}
	d.check(tb.idPatterns)
	switch {
	case d.deny:
		return auth.ClientIDDenied, nil
	case d.allow:
		return auth.ClientIDAllowed, nil
	case d.restricted:
		return auth.ClientIDDenied, nil
	}
	return auth.ClientIDDefault, nil
}

// idDecision accumulates the clientid rules that apply to one client.
type idDecision struct {
	id, u string
	hasU  bool // the client has a username
	// badU: the username is empty or holds '*' and is not substituted.
	badU bool
	// restricted: an allow rule applies, so the id must match one.
	restricted, allow, deny bool
}

func (d *idDecision) check(rules []idRule) {
	for i := range rules {
		r := &rules[i]
		if r.needU && !d.hasU {
			continue // a %u pattern never applies to a client without a username
		}
		if !r.deny {
			d.restricted = true
		}
		if r.needU && d.badU {
			// Not substituted: an allow does not match and a deny
			// does, so that an odd name widens nothing.
			d.deny = d.deny || r.deny
			continue
		}
		if (r.deny && !d.deny) || (!r.deny && !d.allow) {
			if r.match(d.id, d.u) {
				d.deny = d.deny || r.deny
				d.allow = d.allow || !r.deny
			}
		}
	}
}

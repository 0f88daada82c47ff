package file

import (
	"os"
	"sync/atomic"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/topic"
)

// ACL authorizes clients by the rules of an ACL file (see the package
// documentation for the format and the decisions).
type ACL struct {
	path  string
	table atomic.Pointer[aclTable]
}

var _ auth.Authorizer = (*ACL)(nil)

// aclTable is one parsed ACL file; it is never changed once published.
type aclTable struct {
	anonymous []rule            // the section before any user or client line
	users     map[string][]rule // user name -> rules
	clients   map[string][]rule // client id -> rules
	patterns  []rule

	// clientid lines: which client ids an identity may use.
	anonymousIDs []idRule
	userIDs      map[string][]idRule // user name -> rules
	idPatterns   []idRule
}

// LoadACL reads the ACL file at path.
func LoadACL(path string) (*ACL, error) {
	a := &ACL{path: path}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload re-reads the file. On any error the rules already loaded stay in
// force and the error names the file and line.
func (a *ACL) Reload() error {
	data, err := os.ReadFile(a.path)
	if err != nil {
		return err
	}
	t, err := parseACL(a.path, data)
	if err != nil {
		return err
	}
	a.table.Store(t)
	return nil
}

// Authorize decides whether c may perform action on t: a topic name for
// Publish and Read, a filter for Subscribe. It allocates nothing: it runs
// for every delivery.
func (a *ACL) Authorize(c *auth.Client, action auth.Action, t string) bool {
	if c == nil {
		return false
	}
	var need access
	switch action {
	case auth.Publish:
		need = accWrite
	case auth.Read:
		need = accRead
	case auth.Subscribe:
		need = accRead
		if _, inner, ok := topic.ParseShared(t); ok {
			t = inner // the group name grants nothing; the filter decides
		}
	default:
		return false
	}
	tb := a.table.Load()
	v := varsOf(c)
	d := decision{need: need, sub: action == auth.Subscribe, topic: t, v: &v}
	if c.UsernameFlag {
		d.check(tb.users[c.Username])
	} else {
		d.check(tb.anonymous)
	}
	d.check(tb.clients[c.ClientID])
	d.check(tb.patterns)
	return d.allow && !d.deny
}

// decision accumulates the rules matching one request.
type decision struct {
	need        access
	sub         bool // topic is a subscription filter: rules must cover it
	topic       string
	v           *vars
	allow, deny bool
}

func (d *decision) check(rules []rule) {
	for i := range rules {
		if d.deny {
			return // nothing can undo a deny
		}
		r := &rules[i]
		isDeny := r.access == accDeny
		if !isDeny && (d.allow || r.access&d.need == 0) {
			continue // cannot change the outcome
		}
		if r.needU && !d.v.hasU {
			continue // a %u pattern never matches a client without a username
		}
		if (r.needU && d.v.badU) || (r.needC && d.v.badC) {
			// The value cannot be substituted safely: an allow does not
			// apply, and a deny applies, so that an odd name cannot step
			// around it.
			if isDeny {
				d.deny = true
			}
			continue
		}
		var m bool
		if d.sub {
			m = r.covers(d.topic, d.v)
		} else {
			m = r.matchName(d.topic, d.v)
		}
		if m {
			if isDeny {
				d.deny = true
			} else {
				d.allow = true
			}
		}
	}
}

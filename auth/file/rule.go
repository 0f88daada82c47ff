package file

import (
	"fmt"
	"strings"

	"github.com/ternmq/tern/auth"
	"github.com/ternmq/tern/topic"
)

// access is what a rule grants, or deny.
type access uint8

const (
	accRead  access = 1 << iota
	accWrite        // publish
	accDeny         // nothing, whatever else matches

	accReadWrite = accRead | accWrite
)

var accessNames = map[string]access{"read": accRead, "write": accWrite, "readwrite": accReadWrite, "deny": accDeny}

// rule is one compiled topic or pattern line.
type rule struct {
	access access
	line   int // in the file, for debugging a policy
	levels []level
	// dollar: the filter as written starts with '$', the only way to
	// reach '$' topics such as $SYS/... [MQTT-4.7.2-1].
	dollar       bool
	needU, needC bool // the filter uses %u / %c
}

type levelKind uint8

const (
	litLevel  levelKind = iota
	plusLevel           // "+"
	hashLevel           // "#", always last
)

// level is one level of a rule filter. A literal level of a pattern may
// mix text and variables ("dev-%c"): parts then holds the pieces, matched
// in place so that a check allocates nothing.
type level struct {
	kind  levelKind
	lit   string
	parts []part // nil: lit is the whole level
}

type part struct {
	text string
	v    byte // 0: text; 'u' or 'c': the variable
}

// vars are one client's substitution values.
type vars struct {
	u, c string
	hasU bool // the client has a username
	// badU, badC: the value is empty or holds '+', '#' or '/' and must not
	// be substituted.
	badU, badC bool
}

func varsOf(c *auth.Client) vars {
	unsafe := func(s string) bool { return s == "" || strings.ContainsAny(s, "+#/") }
	return vars{u: c.Username, c: c.ClientID, hasU: c.UsernameFlag,
		badU: c.UsernameFlag && unsafe(c.Username), badC: unsafe(c.ClientID)}
}

// compileFilter compiles a rule filter; with pattern, %u and %c are
// variables. The filter must already be valid.
func compileFilter(f string, pattern bool) (rule, error) {
	r := rule{dollar: strings.HasPrefix(f, "$")}
	for l := range strings.SplitSeq(f, "/") {
		switch {
		case l == "+":
			r.levels = append(r.levels, level{kind: plusLevel})
		case l == "#":
			r.levels = append(r.levels, level{kind: hashLevel})
		case pattern && strings.Contains(l, "%"):
			lv, err := compileVars(l)
			if err != nil {
				return r, err
			}
			for _, p := range lv.parts {
				r.needU = r.needU || p.v == 'u'
				r.needC = r.needC || p.v == 'c'
			}
			r.levels = append(r.levels, lv)
		default:
			r.levels = append(r.levels, level{lit: l})
		}
	}
	return r, nil
}

// compileVars splits a pattern level at %u and %c.
func compileVars(l string) (level, error) {
	lv := level{lit: l}
	for {
		i := strings.IndexByte(l, '%')
		if i < 0 {
			if l != "" {
				lv.parts = append(lv.parts, part{text: l})
			}
			return lv, nil
		}
		if i+1 >= len(l) || (l[i+1] != 'u' && l[i+1] != 'c') {
			return lv, fmt.Errorf("%q: unknown substitution %q, want %%u or %%c", lv.lit, l[i:min(i+2, len(l))])
		}
		if i > 0 {
			lv.parts = append(lv.parts, part{text: l[:i]})
		}
		lv.parts = append(lv.parts, part{v: l[i+1]})
		l = l[i+2:]
	}
}

// equals reports whether the level, with v substituted, is s.
func (l *level) equals(s string, v *vars) bool {
	if l.parts == nil {
		return l.lit == s
	}
	for _, p := range l.parts {
		t := p.text
		switch p.v {
		case 'u':
			t = v.u
		case 'c':
			t = v.c
		}
		if !strings.HasPrefix(s, t) {
			return false
		}
		s = s[len(t):]
	}
	return s == ""
}

// matchName reports whether the rule's filter matches the topic name,
// like topic.Match. v's values must be usable (see applies).
func (r *rule) matchName(name string, v *vars) bool {
	if strings.HasPrefix(name, "$") && !r.dollar {
		return false
	}
	rest, more := name, true
	for i := range r.levels {
		l := &r.levels[i]
		if l.kind == hashLevel {
			return true // also the parent level: "a/#" matches "a"
		}
		if !more {
			return false
		}
		seg, tail, found := strings.Cut(rest, "/")
		if l.kind == litLevel && !l.equals(seg, v) {
			return false
		}
		rest, more = tail, found
	}
	return !more
}

// covers reports whether the rule's filter matches every topic name the
// filter sub can match. sub must be valid and not shared.
func (r *rule) covers(sub string, v *vars) bool {
	// sub can match '$' names only if it starts with a literal '$' level.
	if strings.HasPrefix(sub, "$") && !r.dollar {
		return false
	}
	rest, more := sub, true
	for i := range r.levels {
		l := &r.levels[i]
		if l.kind == hashLevel {
			return true
		}
		if !more {
			return false // sub stops here and matches a name the rule does not
		}
		seg, tail, found := strings.Cut(rest, "/")
		switch {
		case seg == "#":
			// Any depth from here, and also the parent level, unless the
			// parent is the empty name, which does not exist. Only a rule
			// '#' covers that, or, where no parent exists, "+/#" (one or
			// more levels) does too.
			noParent := i == 0 || (i == 1 && strings.HasPrefix(sub, "/"))
			return noParent && l.kind == plusLevel && len(r.levels) == i+2 && r.levels[i+1].kind == hashLevel
		case seg == "+":
			if l.kind != plusLevel {
				return false
			}
		case l.kind == litLevel && !l.equals(seg, v):
			return false
		}
		rest, more = tail, found
	}
	return !more
}

// Covers reports whether filter matches every topic name that sub can
// match, so that a grant on filter is a grant on all of sub: "a/#" covers
// "a/+/b" and "a", "a/+" does not cover "a/#", and a filter starting with
// a wildcard covers nothing starting with '$' [MQTT-4.7.2-1]. Both must be
// valid topic filters; a shared sub is judged by its inner filter.
func Covers(filter, sub string) bool {
	if _, inner, ok := topic.ParseShared(sub); ok {
		sub = inner
	}
	r, _ := compileFilter(filter, false)
	return r.covers(sub, &vars{})
}

package file

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/ternmq/tern/topic"
)

// parseACL parses an ACL file; path is for error messages.
func parseACL(path string, data []byte) (*aclTable, error) {
	t := &aclTable{users: make(map[string][]rule), clients: make(map[string][]rule), userIDs: make(map[string][]idRule)}
	// The section rules go to: anonymous while secMap is nil, else
	// secMap[secName].
	var secMap map[string][]rule
	var secName string
	inClient := false // the section is a client section
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		keyword, rest := cutSpace(line)
		errorf := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", path, n, fmt.Sprintf(format, args...))
		}
		switch keyword {
		case "user", "client":
			if rest == "" {
				return nil, errorf("%s: missing name", keyword)
			}
			secMap, secName, inClient = t.users, rest, keyword == "client"
			if inClient {
				secMap = t.clients
			}
		case "clientid":
			if inClient {
				// The id is the client's own choice: granting an id to
				// whoever uses it would grant nothing.
				return nil, errorf("clientid in the section of client %q: client ids are granted to users (a user section) or to anonymous clients (before any section)", secName)
			}
			r, err := parseIDRule(rest, false)
			if err != nil {
				return nil, errorf("%s: %v", strings.TrimSpace(keyword+" "+rest), err)
			}
			r.line = n
			switch {
			case secMap == nil:
				t.anonymousIDs = append(t.anonymousIDs, r)
			default:
				t.userIDs[secName] = append(t.userIDs[secName], r)
			}
		case "topic", "pattern":
			if first, idGlob := cutSpace(rest); keyword == "pattern" && first == "clientid" {
				if idGlob == "" {
					return nil, errorf("pattern clientid: missing client id glob (a topic named \"clientid\" needs the access written: pattern readwrite clientid)")
				}
				r, err := parseIDRule(idGlob, true)
				if err != nil {
					return nil, errorf("pattern clientid %s: %v", idGlob, err)
				}
				r.line = n
				t.idPatterns = append(t.idPatterns, r)
				continue
			}
			r, err := parseRule(rest, keyword == "pattern")
			if err != nil {
				return nil, errorf("%s: %v", strings.TrimSpace(keyword+" "+rest), err)
			}
			r.line = n
			switch {
			case keyword == "pattern":
				t.patterns = append(t.patterns, r)
			case secMap == nil:
				t.anonymous = append(t.anonymous, r)
			default:
				secMap[secName] = append(secMap[secName], r)
			}
		default:
			return nil, errorf("unknown keyword %q: want topic, pattern, clientid, user or client", keyword)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// parseRule parses "[access] <filter>".
func parseRule(s string, pattern bool) (rule, error) {
	if s == "" {
		return rule{}, fmt.Errorf("missing filter")
	}
	acc, f := accReadWrite, s
	first, rest := cutSpace(s)
	if a, ok := accessNames[first]; ok {
		if rest == "" {
			return rule{}, fmt.Errorf("missing filter after %q (a topic named %q needs the access written: readwrite %s)", first, first, first)
		}
		acc, f = a, rest
	} else if rest != "" {
		return rule{}, fmt.Errorf("bad access type %q: want read, write, readwrite or deny", first)
	}
	if _, _, shared := topic.ParseShared(f); shared {
		return rule{}, fmt.Errorf("shared subscription filter: write the filter without $share/{group}/, shared subscriptions are judged by it")
	}
	check := f
	if pattern {
		// Validate the shape with harmless stand-ins for the variables.
		check = strings.NewReplacer("%u", "u", "%c", "c").Replace(f)
	}
	if err := topic.ValidateFilter(check); err != nil {
		return rule{}, fmt.Errorf("invalid filter: %w", err)
	}
	r, err := compileFilter(f, pattern)
	if err != nil {
		return rule{}, err
	}
	r.access = acc
	return r, nil
}

// cutSpace splits s at its first space or tab; rest is trimmed.
func cutSpace(s string) (first, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i+1:])
}

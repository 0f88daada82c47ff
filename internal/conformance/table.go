package conformance

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Versions are the table's sections, in the order they appear.
var Versions = []string{"3.1.1", "5.0"}

// The statuses a row can have.
const (
	Enforced    = "enforced"     // the broker enforces it and a named test checks it
	Untested    = "untested"     // the broker enforces it; no test checks it yet
	NotEnforced = "not enforced" // a server-side rule the broker does not keep
	Client      = "client"       // binds clients only; the row says what package client does
	NA          = "n/a"          // does not apply to Tern, with the reason
)

var statuses = map[string]bool{Enforced: true, Untested: true, NotEnforced: true, Client: true, NA: true}

// Row is one statement of one version.
type Row struct {
	Version string
	ID      string // "MQTT-3.1.2-24"
	Binds   string // server, client or both
	Status  string
	Where   string // file:function references and the reasoning
	Tests   []string
	Line    int // in the table file
}

// ServerSide says whether the statement binds the server at all.
func (r Row) ServerSide() bool { return r.Binds == "server" || r.Binds == "both" }

// TagRE matches a normative statement id. 5.0 has one two-part section
// number ([MQTT-4.2-1]); everything else is x.y.z-n.
var TagRE = regexp.MustCompile(`MQTT-\d+\.\d+(?:\.\d+)?-\d+`)

var (
	testRE  = regexp.MustCompile("`((?:[a-z0-9_/]+\\.)?(?:Test|Fuzz)[A-Za-z0-9_]*)`")
	whereRE = regexp.MustCompile("`([A-Za-z0-9_./-]+\\.go)(?::([A-Za-z0-9_]+))?`")
)

// Table is the parsed docs/conformance.md.
type Table struct {
	Rows []Row
	// Stray lists tags used in the code that name no statement of either
	// version, each with the table line that explains it.
	Stray map[string]int
}

// ParseTable reads the table. Rows are the lines starting "| MQTT-" under
// a "## MQTT 3.1.1" or "## MQTT 5.0" heading; the stray section is headed
// "## Tags that name no statement". Columns: id, statement, binds, status,
// where, tests.
func ParseTable(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := &Table{Stray: map[string]int{}}
	section := ""
	var errs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			h := strings.TrimPrefix(line, "## ")
			section = ""
			for _, v := range Versions {
				if h == "MQTT "+v {
					section = v
				}
			}
			if strings.HasPrefix(h, "Tags that name no statement") {
				section = "stray"
			}
			continue
		}
		if !strings.HasPrefix(line, "| MQTT-") || section == "" {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		id := cells[0]
		if !TagRE.MatchString(id) || TagRE.FindString(id) != id {
			errs = append(errs, fmt.Sprintf("%s:%d: %q is not a statement id", path, n, id))
			continue
		}
		if section == "stray" {
			t.Stray[id] = n
			continue
		}
		if len(cells) != 6 {
			errs = append(errs, fmt.Sprintf("%s:%d: %s (%s): want 6 columns (id, statement, binds, status, where, tests), have %d", path, n, id, section, len(cells)))
			continue
		}
		r := Row{Version: section, ID: id, Binds: cells[2], Status: cells[3], Where: cells[4], Line: n}
		for _, m := range testRE.FindAllStringSubmatch(cells[5], -1) {
			r.Tests = append(r.Tests, m[1])
		}
		t.Rows = append(t.Rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return t, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return t, nil
}

// idKey orders ids as the spec does: numerically, part by part.
func idKey(id string) []int {
	s := strings.TrimPrefix(id, "MQTT-")
	var k []int
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' }) {
		n, _ := strconv.Atoi(p)
		k = append(k, n)
	}
	// [MQTT-4.2-1] sorts as 4.2.0-1.
	if len(k) == 3 {
		k = []int{k[0], k[1], 0, k[2]}
	}
	return k
}

func idLess(a, b string) bool {
	ka, kb := idKey(a), idKey(b)
	for i := range ka {
		if ka[i] != kb[i] {
			return ka[i] < kb[i]
		}
	}
	return false
}

// Totals counts one version's rows.
type Totals struct {
	Server      int // statements that bind the server (server or both)
	Enforced    int // of those: enforced and tested
	Untested    int // enforced, no test
	NotEnforced int
	NA          int
	Client      int // statements that bind clients only
	ClientTests int // of those: the client package honours it and a test checks it
}

// Count computes the totals of version v.
func (t *Table) Count(v string) Totals {
	var s Totals
	for _, r := range t.Rows {
		if r.Version != v {
			continue
		}
		if !r.ServerSide() {
			s.Client++
			if len(r.Tests) > 0 {
				s.ClientTests++
			}
			continue
		}
		s.Server++
		switch r.Status {
		case Enforced:
			s.Enforced++
		case Untested:
			s.Untested++
		case NotEnforced:
			s.NotEnforced++
		case NA:
			s.NA++
		}
	}
	return s
}

// Summary is the README's sentence for version v.
func (t *Table) Summary(v string) string {
	s := t.Count(v)
	return fmt.Sprintf("- MQTT %s: %d of %d server-side statements enforced and tested, %d enforced without a test yet, %d not enforced, %d not applicable; %d client-side statements, %d of them checked by a test of the client package.",
		v, s.Enforced, s.Server, s.Untested, s.NotEnforced, s.NA, s.Client, s.ClientTests)
}

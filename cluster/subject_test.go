package cluster

import (
	"strings"
	"testing"

	"github.com/ternmq/tern/topic"
)

func TestSubject(t *testing.T) {
	for _, tc := range []struct{ name, subject string }{
		{"a/b", "t.a.b"},
		{"a", "t.a"},
		{"/", "t.%.%"},
		{"a//b", "t.a.%.b"},
		{"a.b/c d", "t.a%2Eb.c%20d"},
		{"*/>/%", "t.%2A.%3E.%25"},
		{"$SYS/broker", "d.$SYS.broker"},
		{"a/$x", "t.a.$x"},
		{"é/\x7f", "t.é.%7F"},
	} {
		if got := Subject(tc.name); got != tc.subject {
			t.Errorf("Subject(%q) = %q, want %q", tc.name, got, tc.subject)
		}
		if back, ok := Topic(tc.subject); !ok || back != tc.name {
			t.Errorf("Topic(%q) = %q, %v, want %q", tc.subject, back, ok, tc.name)
		}
	}
}

func TestFilterSubjects(t *testing.T) {
	for _, tc := range []struct {
		filter   string
		subjects []string
	}{
		{"a/b", []string{"t.a.b"}},
		{"+", []string{"t.*"}},
		{"#", []string{"t.>"}},
		{"a/#", []string{"t.a", "t.a.>"}},
		{"+/+/#", []string{"t.*.*", "t.*.*.>"}},
		{"$SYS/#", []string{"d.$SYS", "d.$SYS.>"}},
		{"a/+/.", []string{"t.a.*.%2E"}},
		{"/+", []string{"t.%.*"}},
	} {
		got := FilterSubjects(tc.filter)
		if strings.Join(got, " ") != strings.Join(tc.subjects, " ") {
			t.Errorf("FilterSubjects(%q) = %q, want %q", tc.filter, got, tc.subjects)
		}
	}
}

func TestTopicRejects(t *testing.T) {
	for _, s := range []string{"", "t", "x.a", "t.a..b", "t.%2", "t.%zz", "t.$x", "d.x", "t.a.%4"} {
		if name, ok := Topic(s); ok {
			t.Errorf("Topic(%q) = %q, want refusal", s, name)
		}
	}
}

// natsMatch is NATS's subject matching: '*' one token, '>' one or more.
func natsMatch(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

// validSubject is what NATS accepts: non-empty tokens, no whitespace.
func validSubject(s string) bool {
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			return false
		}
	}
	return true
}

// FuzzSubject checks that the mapping is one to one and that NATS matching
// of the subjects agrees with MQTT matching of topic and filter.
func FuzzSubject(f *testing.F) {
	for _, s := range [][2]string{
		{"a/b", "a/+"}, {"a", "a/#"}, {"$SYS/x", "#"}, {"$SYS/x", "$SYS/#"}, {"a//b", "a/+/b"},
		{"/", "+/+"}, {"a.b", "a.b"}, {"*", "+"}, {">", "#"}, {"a/b c", "a/#"}, {"%", "%"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, filter string) {
		if topic.ValidateName(name) != nil {
			return
		}
		subj := Subject(name)
		if !validSubject(subj) {
			t.Fatalf("Subject(%q) = %q: not a valid subject", name, subj)
		}
		if back, ok := Topic(subj); !ok || back != name {
			t.Fatalf("Topic(Subject(%q)) = %q, %v", name, back, ok)
		}
		if topic.ValidateFilter(filter) != nil {
			return
		}
		if _, _, shared := topic.ParseShared(filter); shared {
			return
		}
		var nats bool
		for _, fs := range FilterSubjects(filter) {
			nats = nats || natsMatch(fs, subj)
		}
		if mqtt := topic.Match(filter, name); mqtt != nats {
			t.Fatalf("filter %q, topic %q: MQTT match %v, NATS match %v (%q ~ %q)", filter, name, mqtt, nats, FilterSubjects(filter), subj)
		}
	})
}

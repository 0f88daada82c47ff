package cluster

import (
	"strings"
)

// Topics travel between nodes as NATS subjects, so that NATS forwards a
// message only to the nodes whose subscriptions match it. The mapping:
//
//   - A topic is one subject token per level under a root: "t" for topics,
//     "d" for topics that begin with '$', which wildcards at the first
//     level never match [MQTT-4.7.2-1]. "a/b" is "t.a.b", "$SYS/x" is
//     "d.$SYS.x".
//   - Within a level, '%', '.', '*', '>', bytes up to ' ' and DEL become
//     %XX (upper-case hex): NATS splits on '.', treats whole-token '*' and
//     '>' as wildcards and refuses whitespace. Other bytes, UTF-8
//     included, pass unchanged.
//   - An empty level (MQTT allows "a//b") is "%" alone, which no escaped
//     level can be.
//   - In a filter, '+' is '*'; a trailing '#' is '>' and also matches its
//     parent level ("a/#" matches "a"), so "a/#" is two subjects, "t.a"
//     and "t.a.>"; "#" alone is "t.>".
//
// The mapping is one to one: Topic(Subject(t)) == t for every topic name.
const (
	rootTopic  = "t"
	rootDollar = "d"
)

// Subject returns the NATS subject of an MQTT topic name.
func Subject(name string) string {
	var b strings.Builder
	b.Grow(len(name) + 8)
	if strings.HasPrefix(name, "$") {
		b.WriteString(rootDollar)
	} else {
		b.WriteString(rootTopic)
	}
	for level := range strings.SplitSeq(name, "/") {
		b.WriteByte('.')
		escapeLevel(&b, level)
	}
	return b.String()
}

// FilterSubjects returns the NATS subjects whose union matches exactly the
// topic names an MQTT filter matches (one, or two for a trailing '#').
// filter must be valid and not shared ($share/ is parsed off before).
func FilterSubjects(filter string) []string {
	var b strings.Builder
	b.Grow(len(filter) + 8)
	if strings.HasPrefix(filter, "$") {
		b.WriteString(rootDollar)
	} else {
		b.WriteString(rootTopic)
	}
	for level := range strings.SplitSeq(filter, "/") {
		switch level {
		case "#":
			if b.Len() == 1 { // "#" alone: every topic, none is zero levels
				return []string{b.String() + ".>"}
			}
			parent := b.String()
			return []string{parent, parent + ".>"}
		case "+":
			b.WriteString(".*")
		default:
			b.WriteByte('.')
			escapeLevel(&b, level)
		}
	}
	return []string{b.String()}
}

// Topic returns the MQTT topic name of a subject made by Subject.
func Topic(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, rootTopic+".")
	if !ok {
		if rest, ok = strings.CutPrefix(subject, rootDollar+"."); !ok {
			return "", false
		}
	}
	var b strings.Builder
	b.Grow(len(rest))
	for i, tok := range strings.Split(rest, ".") {
		if i > 0 {
			b.WriteByte('/')
		}
		if tok == "%" {
			continue
		}
		if !unescapeLevel(&b, tok) {
			return "", false
		}
	}
	name := b.String()
	if strings.HasPrefix(name, "$") != strings.HasPrefix(subject, rootDollar+".") {
		return "", false
	}
	return name, true
}

const hexDigits = "0123456789ABCDEF"

func escapeLevel(b *strings.Builder, level string) {
	if level == "" {
		b.WriteByte('%')
		return
	}
	for i := 0; i < len(level); i++ {
		c := level[i]
		if c == '%' || c == '.' || c == '*' || c == '>' || c <= ' ' || c == 0x7F {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
}

func unescapeLevel(b *strings.Builder, tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tok) {
			return false
		}
		hi, lo := unhex(tok[i+1]), unhex(tok[i+2])
		if hi < 0 || lo < 0 {
			return false
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

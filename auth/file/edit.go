package file

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoUser is returned by DeleteUser for a user the file does not have.
var ErrNoUser = errors.New("no such user")

// ValidUsername reports whether name can be written to a password file:
// not empty, no ':' (it ends the name), no line breaks, and nothing the
// parser would trim or read as a comment.
func ValidUsername(name string) error {
	switch {
	case name == "":
		return errors.New("empty username")
	case strings.ContainsAny(name, ":\r\n"):
		return fmt.Errorf("username %q: must not contain ':' or line breaks", name)
	case name[0] == '#':
		return fmt.Errorf("username %q: must not start with '#'", name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("username %q: must not start or end with white space", name)
	}
	return nil
}

// CreateFile replaces the file at path (or creates it) with one entry.
func CreateFile(path, user, encodedHash string) error {
	if err := checkEntry(user, encodedHash); err != nil {
		return err
	}
	return writeAtomic(path, []byte(user+":"+encodedHash+"\n"))
}

// SetPassword sets user's hash in the file at path, replacing the user's
// line or appending one; the other lines are kept as they are. A missing
// file is created.
func SetPassword(path, user, encodedHash string) error {
	if err := checkEntry(user, encodedHash); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	lines := splitLines(data)
	entry := user + ":" + encodedHash
	found := false
	for i, l := range lines {
		if entryUser(l) == user {
			if found {
				lines[i] = "" // a duplicate would make the file invalid; drop it
				continue
			}
			lines[i], found = entry, true
		}
	}
	if !found {
		lines = append(lines, entry)
	}
	return writeAtomic(path, joinLines(lines))
}

// DeleteUser removes user's line from the file at path, keeping the
// others. It returns an error wrapping ErrNoUser when there is none.
func DeleteUser(path, user string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := splitLines(data)
	kept := lines[:0]
	for _, l := range lines {
		if entryUser(l) != user {
			kept = append(kept, l)
		}
	}
	if len(kept) == len(lines) {
		return fmt.Errorf("%s: %w %q", path, ErrNoUser, user)
	}
	return writeAtomic(path, joinLines(kept))
}

func checkEntry(user, encodedHash string) error {
	if err := ValidUsername(user); err != nil {
		return err
	}
	_, err := parseHash(encodedHash)
	return err
}

// entryUser returns the username of a password file line, "" for a
// comment, a blank line or a line without ':'.
func entryUser(line string) string {
	l := strings.TrimSpace(line)
	if l == "" || l[0] == '#' {
		return ""
	}
	name, _, ok := strings.Cut(l, ":")
	if !ok {
		return ""
	}
	return name
}

// splitLines splits data into lines without their line endings.
func splitLines(data []byte) []string {
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

func joinLines(lines []string) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// writeAtomic replaces path with data, mode 0600: written to a temporary
// file in the same directory, synced, then renamed over path, so readers
// (a reloading broker) see the old file or the new one, never a part.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp makes 0600 files; say so in case that ever changes.
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable; not every platform can sync a
	// directory, and the new file is in place either way.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

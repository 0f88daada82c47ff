package client

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ternmq/tern/packet"
)

// dirMagic starts every message file: format version 1.
const dirMagic = "ternq\x00\x01\n"

// DirStore is a Store keeping one file per message in a directory. A file
// is written under a temporary name, synced and renamed into place, so
// that a crash leaves either the old or the new version, never a part.
// Put costs two fsyncs (the file and the directory); a Session groups its
// writes with Apply, one fsync per message written plus one for the
// directory per batch, and nothing for a message completed before its
// batch was written. It suits the rate of a device or a service, not a
// firehose.
type DirStore struct {
	dir string
}

var _ BatchStore = (*DirStore)(nil)

// OpenDirStore opens (creating) dir as a DirStore. Only one Session may use
// a directory at a time.
func OpenDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("client: store: %w", err)
	}
	return &DirStore{dir: dir}, nil
}

func (d *DirStore) name(seq uint64) string {
	return filepath.Join(d.dir, fmt.Sprintf("%016x.msg", seq))
}

// Put writes m durably.
func (d *DirStore) Put(m StoredMessage) error {
	return d.Apply([]StoredMessage{m}, nil)
}

// Apply writes puts and removes deletes, with one directory sync for all.
func (d *DirStore) Apply(puts []StoredMessage, deletes []uint64) error {
	for _, m := range puts {
		if err := d.write(m); err != nil {
			return err
		}
	}
	for _, seq := range deletes {
		if err := os.Remove(d.name(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("client: store: %w", err)
		}
	}
	if len(puts) == 0 {
		// A removal that is not durable yet costs at most a duplicate
		// after a crash, as a Delete does.
		return nil
	}
	// The renames are durable only once the directory is.
	if err := syncDir(d.dir); err != nil {
		return fmt.Errorf("client: store: %w", err)
	}
	return nil
}

// write writes m's file under a temporary name, syncs it and renames it
// into place; the directory is not synced.
func (d *DirStore) write(m StoredMessage) error {
	b := []byte(dirMagic)
	var flags byte
	if m.Pubrel {
		flags = 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, m.PacketID)
	p := *m.Publish
	p.Dup = false
	p.PacketID = max(m.PacketID, 1) // a QoS 1/2 PUBLISH must have one to encode
	b, err := p.Append(b, packet.V5)
	if err != nil {
		return fmt.Errorf("client: store: %w", err)
	}
	final := d.name(m.Seq)
	tmp := final + ".tmp"
	if err := writeSync(tmp, b); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("client: store: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("client: store: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeSync(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Delete removes the message seq.
func (d *DirStore) Delete(seq uint64) error {
	if err := os.Remove(d.name(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("client: store: %w", err)
	}
	return nil
}

// Load reads every message, in Seq order, and removes temporary files
// left by a crash.
func (d *DirStore) Load() ([]StoredMessage, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("client: store: %w", err)
	}
	var out []StoredMessage
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".msg.tmp") {
			os.Remove(filepath.Join(d.dir, name))
			continue
		}
		hex, ok := strings.CutSuffix(name, ".msg")
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.dir, name))
		if err != nil {
			return nil, fmt.Errorf("client: store: %w", err)
		}
		m, err := decodeStored(b)
		if err != nil {
			return nil, fmt.Errorf("client: store: %s: %w", name, err)
		}
		m.Seq = seq
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func decodeStored(b []byte) (StoredMessage, error) {
	var m StoredMessage
	if !bytes.HasPrefix(b, []byte(dirMagic)) || len(b) < len(dirMagic)+3 {
		return m, errors.New("not a message file")
	}
	b = b[len(dirMagic):]
	m.Pubrel = b[0]&1 != 0
	m.PacketID = binary.BigEndian.Uint16(b[1:3])
	pk, err := packet.ReadPacket(bufio.NewReader(bytes.NewReader(b[3:])), packet.V5, 0)
	if err != nil {
		return m, err
	}
	p, ok := pk.(*packet.Publish)
	if !ok {
		return m, fmt.Errorf("holds a %s, not a PUBLISH", pk.Type())
	}
	p.PacketID = 0
	m.Publish = p
	return m, nil
}

// Close does nothing: every Put is already durable.
func (d *DirStore) Close() error { return nil }

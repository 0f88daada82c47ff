package packet

// decoder reads the fields of one packet body. Every read checks the length
// it needs against what is left, so no length field is trusted.
type decoder struct {
	b []byte // what is left of the body
	t Type   // for error messages
}

func (d *decoder) short(what string, need int) error {
	return errf(MalformedPacket, "%s %s: need %d bytes, %d left", d.t, what, need, len(d.b))
}

func (d *decoder) u8(what string) (byte, error) {
	if len(d.b) < 1 {
		return 0, d.short(what, 1)
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v, nil
}

func (d *decoder) u16(what string) (uint16, error) {
	if len(d.b) < 2 {
		return 0, d.short(what, 2)
	}
	v := uint16(d.b[0])<<8 | uint16(d.b[1])
	d.b = d.b[2:]
	return v, nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if len(d.b) < 4 {
		return 0, d.short(what, 4)
	}
	v := uint32(d.b[0])<<24 | uint32(d.b[1])<<16 | uint32(d.b[2])<<8 | uint32(d.b[3])
	d.b = d.b[4:]
	return v, nil
}

func (d *decoder) varint(what string) (uint32, error) {
	v, n := ConsumeVarint(d.b)
	if n == 0 {
		return 0, errf(MalformedPacket, "%s %s: variable byte integer runs past the end of the packet", d.t, what)
	}
	if n < 0 {
		return 0, errf(MalformedPacket, "%s %s: variable byte integer longer than four bytes", d.t, what)
	}
	d.b = d.b[n:]
	return v, nil
}

// field returns the next length-prefixed field without copying it.
func (d *decoder) field(what string) ([]byte, error) {
	if len(d.b) < 2 {
		return nil, d.short(what+" length", 2)
	}
	n := int(d.b[0])<<8 | int(d.b[1])
	if len(d.b)-2 < n {
		return nil, errf(MalformedPacket, "%s %s: length %d exceeds the %d bytes left", d.t, what, n, len(d.b)-2)
	}
	v := d.b[2 : 2+n : 2+n]
	d.b = d.b[2+n:]
	return v, nil
}

// str reads a UTF-8 Encoded String. The result is a copy: it never aliases
// the body, which may be a reused buffer.
func (d *decoder) str(what string) (string, error) {
	b, err := d.field(what)
	if err != nil {
		return "", err
	}
	if p := stringProblem(b); p != "" {
		return "", errf(MalformedPacket, "%s %s %s", d.t, what, p)
	}
	return string(b), nil
}

// strAgain is str that returns *last, rather than a new copy, when the
// string is the same again, and otherwise makes it *last: a client that
// publishes to one topic over and over costs one string.
func (d *decoder) strAgain(what string, last *string) (string, error) {
	b, err := d.field(what)
	if err != nil {
		return "", err
	}
	if string(b) == *last {
		return *last, nil // checked when it was first read
	}
	if p := stringProblem(b); p != "" {
		return "", errf(MalformedPacket, "%s %s %s", d.t, what, p)
	}
	*last = string(b)
	return *last, nil
}

// bin reads Binary Data. The result aliases the body (capacity clipped, so
// appending to it cannot overwrite later fields); empty is nil so that
// decoding and encoding round-trip exactly.
func (d *decoder) bin(what string) ([]byte, error) {
	b, err := d.field(what)
	if len(b) == 0 {
		return nil, err
	}
	return b, err
}

// rest returns all that is left (a PUBLISH payload), nil when empty.
func (d *decoder) rest() []byte {
	b := d.b
	d.b = nil
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}

// end reports trailing bytes after the last field of a packet whose
// structure is fixed: the remaining length disagreed with the contents.
func (d *decoder) end() error {
	if len(d.b) != 0 {
		return errf(MalformedPacket, "%s has %d unexpected bytes after its last field", d.t, len(d.b))
	}
	return nil
}

package packet

import "fmt"

// errf builds a codec error that reads "packet: <what went wrong>: <code>"
// and matches code with errors.Is, so that the broker can both log what was
// wrong and tell the peer the reason code.
func errf(code ReasonCode, format string, args ...any) error {
	return fmt.Errorf("packet: %s: %w", fmt.Sprintf(format, args...), code)
}

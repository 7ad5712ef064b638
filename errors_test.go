package stateroom

import (
	"errors"
	"fmt"
	"testing"
)

// TestCheckServiceCloseText: the error CheckServiceClose builds without fmt
// reads exactly as the fmt.Errorf it replaced, for every refused code, and
// still wraps ErrCloseCode (and nothing else).
func TestCheckServiceCloseText(t *testing.T) {
	for c := range 1 << 16 {
		code := CloseCode(c)
		err := CheckServiceClose(code)
		if err == nil {
			continue
		}
		want := fmt.Errorf("%w; got %d (%s): codes below 4100 belong to the protocol and the runtime", ErrCloseCode, uint16(code), code)
		if err.Error() != want.Error() {
			t.Fatalf("CheckServiceClose(%d) = %q, want %q", c, err, want)
		}
		if !errors.Is(err, ErrCloseCode) || errors.Is(err, ErrRoomRefused) || errors.Unwrap(err) != ErrCloseCode {
			t.Fatalf("CheckServiceClose(%d) = %v: wraps %v, want ErrCloseCode alone", c, err, errors.Unwrap(err))
		}
	}
}

package stateroom

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCloseCodeTable checks every row of the table in CloseCode's doc
// comment: what a client does with the code, and its name.
func TestCloseCodeTable(t *testing.T) {
	for _, row := range []struct {
		code      CloseCode
		name      string
		reconnect bool
	}{
		{CloseNormal, "normal", false},
		{CloseGoingAway, "going away", true},
		{CloseProtocolError, "protocol error", false},
		{CloseAbnormal, "abnormal closure", true},
		{CloseInvalidPayload, "invalid payload", false},
		{ClosePolicyViolation, "policy violation", false},
		{CloseMessageTooBig, "message too big", false},
		{CloseServiceFault, "service fault", true},
		{CloseServiceRestart, "service restart", true},
		{CloseTryAgainLater, "try again later", true},
		{CloseSlowConsumer, "slow consumer", true},
		{CloseHeartbeatTimeout, "heartbeat timeout", true},
		{CloseRoomClosed, "room closed", false},
		{CloseReplaced, "replaced", false},
		{4100, "service code 4100", false},
		{4999, "service code 4999", false},
		// Outside the table: a client cannot know they are temporary.
		{3000, "3000", false},
		{4004, "4004", false},
		{4099, "4099", false},
		{1014, "1014", false},
	} {
		if got := row.code.Reconnect(); got != row.reconnect {
			t.Errorf("%d.Reconnect() = %v, want %v", row.code, got, row.reconnect)
		}
		if got := row.code.String(); got != row.name {
			t.Errorf("%d.String() = %q, want %q", row.code, got, row.name)
		}
	}
}

// TestForService: exactly CloseNormal and 4100-4999 are a service's, and
// CheckServiceClose agrees with ForService, naming the code it refuses.
func TestForService(t *testing.T) {
	for c := range 1 << 16 {
		code := CloseCode(c)
		want := code == 1000 || (c >= 4100 && c <= 4999)
		if got := code.ForService(); got != want {
			t.Fatalf("%d.ForService() = %v, want %v", c, got, want)
		}
		err := CheckServiceClose(code)
		if want != (err == nil) || (err != nil && !errors.Is(err, ErrCloseCode)) {
			t.Fatalf("CheckServiceClose(%d) = %v; want nil exactly for a service's code, else ErrCloseCode", c, err)
		}
	}
	if err := CheckServiceClose(CloseServiceFault); !strings.Contains(err.Error(), "1011 (service fault)") {
		t.Errorf("CheckServiceClose(1011) = %q; want it to name the code", err)
	}
}

// TestSendable follows RFC 6455, section 7.4: the codes a close frame may
// carry.
func TestSendable(t *testing.T) {
	for _, c := range []CloseCode{1000, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4000, 4999} {
		if !c.Sendable() {
			t.Errorf("%d is sendable, Sendable() says no", c)
		}
	}
	for _, c := range []CloseCode{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
		if c.Sendable() {
			t.Errorf("%d may not be sent, Sendable() says yes", c)
		}
	}
	// Everything the runtime sends is sendable, and so is every code a
	// service may use.
	for c := range 1 << 16 {
		if code := CloseCode(c); code.ForService() && !code.Sendable() {
			t.Errorf("%d is a service's code but not sendable", c)
		}
	}
}

func TestTruncateReason(t *testing.T) {
	ascii := strings.Repeat("a", 200)
	if got := TruncateReason(ascii); got != ascii[:MaxCloseReason] {
		t.Errorf("200 ASCII bytes cut to %d bytes, want %d", len(got), MaxCloseReason)
	}
	exact := strings.Repeat("b", MaxCloseReason)
	if got := TruncateReason(exact); got != exact {
		t.Error("a reason of exactly MaxCloseReason bytes was changed")
	}
	// 122 ASCII bytes and a 3-byte rune straddling byte 123: the rune
	// goes whole, never in part.
	straddle := strings.Repeat("c", 122) + "☃" + "tail"
	if got := TruncateReason(straddle); got != strings.Repeat("c", 122) {
		t.Errorf("cut to %q; want the 122 bytes before the rune that does not fit", got)
	}
	for _, s := range []string{strings.Repeat("é", 100), strings.Repeat("☃", 60), strings.Repeat("😀", 40)} {
		got := TruncateReason(s)
		if len(got) > MaxCloseReason || !utf8.ValidString(got) || !strings.HasPrefix(s, got) || len(got) < MaxCloseReason-3 {
			t.Errorf("TruncateReason of %d bytes of %q... = %d bytes; want a valid prefix of at most %d bytes, losing less than one rune", len(s), s[:4], len(got), MaxCloseReason)
		}
	}
	if TruncateReason("") != "" {
		t.Error("empty reason changed")
	}
}

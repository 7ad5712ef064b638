package stateroom

// Payload is one message: text or binary. Text travels as a WebSocket text
// frame and binary as a binary frame; the kind is kept end to end, through
// the WebAssembly ABI too.
type Payload struct {
	// Data holds the message bytes; UTF-8 when the payload is text.
	Data []byte
	// Binary is true for a binary message and false for text.
	Binary bool
}

// Text returns a text payload holding s.
func Text(s string) Payload { return Payload{Data: []byte(s)} }

// Binary returns a binary payload holding b. It does not copy b.
func Binary(b []byte) Payload { return Payload{Data: b, Binary: true} }

// IsText reports whether the payload is text.
func (p Payload) IsText() bool { return !p.Binary }

// String returns the payload's bytes as a string, whatever its kind.
func (p Payload) String() string { return string(p.Data) }

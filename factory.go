package stateroom

// Factory builds the service of a new room. The server calls it when the
// first client connects to a room id that has no running room.
type Factory interface {
	// NewService returns a fresh service for the room. An error refuses
	// the connection before the WebSocket upgrade: the client gets an HTTP
	// error that carries the message, and the server keeps running. Wrap
	// [ErrRoomRefused] to answer 403 Forbidden instead of 500.
	NewService(roomID string) (Service, error)
}

// FactoryFunc adapts a function to the [Factory] interface.
type FactoryFunc func(roomID string) (Service, error)

// NewService calls f(roomID).
func (f FactoryFunc) NewService(roomID string) (Service, error) { return f(roomID) }

// New returns a Factory that calls newService for each room. It suits
// services whose constructor cannot fail.
func New[S Service](newService func(roomID string) S) Factory {
	return FactoryFunc(func(roomID string) (Service, error) { return newService(roomID), nil })
}

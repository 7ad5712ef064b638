// Package stateroom is the service model of Stateroom for Go: a minimalist
// framework for stateful WebSocket backends organised as rooms.
//
// A room is one instance of a [Service]. Every event of a room (the room
// starts, a client connects, disconnects or sends a message, the room's single
// timer fires) is delivered to that instance one at a time, so a service keeps
// its state in plain fields with no locking. The service answers through the
// [Room] it is handed: it sends a [Payload] to a [Recipient] (one client,
// everyone, or everyone but one) and sets the room's timer.
//
// A [Factory] builds one service per room from the room id. The same service
// type runs in the server process (package server) or compiled to WebAssembly
// with the guest SDK (package guest) and loaded at run time (package
// wasmhost).
//
// This package imports neither the server nor a WebAssembly runtime, so
// services compiled for GOOS=wasip1 stay small.
//
// # Concurrency
//
// The methods of a Service are never called concurrently for one room; rooms
// run in parallel. A Room is valid only during the callback it was passed to:
// do not keep it or use it from another goroutine.
package stateroom

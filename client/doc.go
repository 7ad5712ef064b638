// Package client connects Go programs, bots and tests to a Stateroom server.
//
// [Dial] opens a WebSocket to one room and returns a [Conn]:
//
//	c, err := client.Dial(ctx, "ws://127.0.0.1:8080", client.Options{Room: "lobby", Reconnect: true})
//	if err != nil { ... }
//	defer c.Close()
//	c.Send(ctx, stateroom.Text("hello"))
//	for msg := range c.Messages() { ... } // ends when the Conn is closed for good
//	log.Println(c.Err())                  // why
//
// or, one message at a time, with a deadline:
//
//	msg, err := c.Receive(ctx) // err is ctx's error, or c.Err() once closed
//
// # Reconnection
//
// With Options.Reconnect, a Conn whose connection ends reconnects by itself
// with a jittered exponential backoff (Options.MinDelay to
// Options.MaxDelay), following the close-code table of
// [stateroom.CloseCode]: it reconnects when [stateroom.CloseCode.Reconnect]
// says so (the service was restarted, the server is going away, the room
// is full for now, ...) or when the connection dropped without a close
// frame, and stops otherwise (the room was closed, the client broke a
// limit, the service closed it). A handshake refused with a 4xx status
// (other than 408 and 429) stops it too: trying again would be refused
// the same way.
//
// Every connection carries the same reconnection token (?token=T; one is
// generated when Options.Token is empty), so the room gives the client its
// id back as long as the room lives. A room that ended (a service restart
// starts a fresh room) counts ids afresh.
//
// While the Conn reconnects, [Conn.Send] queues messages (at most
// Options.SendQueue, then it returns [ErrQueueFull]); they are sent, in
// order, once it is open again. [Conn.State] and Options.OnStateChange
// tell connecting, open, reconnecting and closed apart.
//
// # Goroutines
//
// An open Conn runs two goroutines: one reads (and answers pings), one
// writes what Send queued. [Conn.Close] sends a close frame with 1000 and
// returns once both have ended, as they also do when the Conn stops on
// its own.
package client

package faults_test

import (
	"sync"
	"testing"

	"github.com/stateroom-go/stateroom"
	"github.com/stateroom-go/stateroom/bench/relay"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
)

// TestFloodGetsItsCloseFrame: a client that floods past the message rate
// is closed with 1008 (MessageRateAction CloseClient: the default
// throttles instead), and gets that close frame although it is still
// sending when the server gives up on it. A server that closes its socket
// with the client's bytes unread makes the kernel reset the connection,
// and the close frame is lost (RFC 6455, section 7.1.1: the server should
// half-close and let the client close, or at least drain what it sends
// for a while). A hundred rounds, because the loss depends on timing.
func TestFloodGetsItsCloseFrame(t *testing.T) {
	const rounds = 100
	e := start(t, relay.Factory(), server.Options{MessageRate: 100, MessageBurst: 100, MessageRateAction: server.CloseClient})
	ctx := testContext(t)
	batch := make([]wsclient.Frame, 50)
	for i := range batch {
		batch[i] = wsclient.Message(wsclient.OpText, []byte("flood flood flood flood"))
	}
	// Healthy traffic in the room (well under the rate), so frames are on
	// their way to the flooder too when it is closed.
	g, err := wsclient.JoinGroup(ctx, e.url("flood"), 3, wsclient.GroupOptions{Pad: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	lost := 0
	for round := range rounds {
		sendAll(t, g)
		c, err := wsclient.DialRaw(ctx, e.url("flood"), wsclient.RawOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var writer sync.WaitGroup
		writer.Go(func() {
			for range 100 { // until the server stops reading, at most 5000 messages
				if c.WriteFrames(batch...) != nil {
					return
				}
			}
		})
		closed, err := c.ReadClose(waitTimeout)
		c.Close()
		writer.Wait()
		switch {
		case err != nil:
			lost++
			t.Logf("round %d: %v", round, err)
		case closed.Code != stateroom.ClosePolicyViolation:
			t.Errorf("round %d: closed with %d %q, want %d (ClosePolicyViolation)", round, closed.Code, closed.Reason, stateroom.ClosePolicyViolation)
		}
	}
	if err := g.WaitDelivered(ctx); err != nil {
		t.Error(err)
	}
	if lost > 0 {
		t.Errorf("%d of %d flooding clients never got their close frame: the server reset the connection", lost, rounds)
	}
}

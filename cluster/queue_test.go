package cluster

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stateroom-go/stateroom"
)

// A gateway queue's round publishes its frames in order in as few
// messages as maxMessageBytes allows, a shared frame once per message, a
// frame too large to share a message alone, and each close between the
// frames it came between.
func TestGatewayQueuePublishesBatches(t *testing.T) {
	c := startCluster(t, 1)
	nc, err := nats.Connect(c.servers[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("gw")
	if err != nil {
		t.Fatal(err)
	}
	q := &gatewayQueue{n: &Node{nc: nc}, subject: "gw"}

	small := []byte{0x81, 3, 'v', '=', '1'}
	big := bytes.Repeat([]byte{'x'}, maxMessageBytes)
	var batch []outItem
	seq := map[uint64]uint64{}
	frame := func(link uint64, f []byte) {
		seq[link]++
		batch = append(batch, outItem{delivery: delivery{link: link, seq: seq[link], frame: f}})
	}
	for i := range 3000 { // 3,000 broadcasts to 3 links: more than one message
		f := []byte{0x81, 3, 'v', '=', byte(i)} // a room encodes each once
		for link := range uint64(3) {
			frame(link+1, f)
		}
	}
	frame(1, big)
	frame(2, small)
	seq[3]++
	batch = append(batch, outItem{delivery: delivery{link: 3, seq: seq[3]}, close: true, code: stateroom.CloseNormal})
	frame(1, small)
	q.publish(batch)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	var got []outItem
	msgs := 0
	for len(got) < len(batch) {
		msg, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d items: %v", len(got), len(batch), err)
		}
		msgs++
		m, err := decodeMessage(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch m.op {
		case opClose:
			got = append(got, outItem{delivery: delivery{link: m.link, seq: m.seq}, close: true, code: m.code})
		case opFrames:
			hasBig := false
			for _, d := range m.frames {
				got = append(got, outItem{delivery: d})
				hasBig = hasBig || len(d.frame) == len(big)
			}
			if hasBig && len(m.frames) != 1 {
				t.Errorf("the large frame shares a message with %d others", len(m.frames)-1)
			}
			if !hasBig && len(msg.Data) > maxMessageBytes {
				t.Errorf("a message of %d bytes: over maxMessageBytes", len(msg.Data))
			}
		}
	}
	for i := range batch {
		w, g := batch[i], got[i]
		if w.link != g.link || w.seq != g.seq || w.close != g.close || !bytes.Equal(w.frame, g.frame) {
			t.Fatalf("item %d: got link %d seq %d close %v (%d bytes); want link %d seq %d close %v (%d bytes)",
				i, g.link, g.seq, g.close, len(g.frame), w.link, w.seq, w.close, len(w.frame))
		}
	}
	// 9,000 small frames fit in a few messages; then the large frame, one
	// more small one, the close, and the last frame.
	if msgs > 10 {
		t.Errorf("%d messages for %d items; want a few", msgs, len(batch))
	}
	t.Logf("%d items in %d messages", len(batch), msgs)
}

// byLink groups a message's frames by link, each link's in the order they
// came, whatever the interleaving.
func TestByLink(t *testing.T) {
	g := &gatewaySide{linkIndex: map[uint64]int{}}
	a, b := []byte("a"), []byte("b")
	in := []delivery{{7, 1, a}, {3, 1, a}, {9, 1, a}, {7, 2, b}, {9, 2, b}, {3, 2, b}, {7, 3, a}}
	got := g.byLink(slices.Clone(in))
	want := []delivery{{7, 1, a}, {7, 2, b}, {7, 3, a}, {3, 1, a}, {3, 2, b}, {9, 1, a}, {9, 2, b}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("byLink = %v; want %v", got, want)
	}
	one := []delivery{{5, 1, a}, {5, 2, b}}
	if got := g.byLink(one); !reflect.DeepEqual(got, one) {
		t.Fatalf("byLink of one link = %v; want it unchanged", got)
	}
}

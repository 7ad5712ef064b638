// Command chat is a chat room: clients pick a nickname with "/nick NAME",
// every other message goes to everyone as "NAME: text", and the others
// hear when someone joins or leaves. A newcomer is told who is here and
// shown the room's recent messages, which outlive a restart of the server.
package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/stateroom-go/stateroom"
)

// MaxNickLength is the longest nickname accepted, in characters.
const MaxNickLength = 32

// HistoryLength is how many of the room's latest messages a newcomer is
// shown, and a snapshot keeps.
const HistoryLength = 20

// Chat is the chat service of one room. It is a stateroom.Snapshotter
// whose snapshot is the history and the nicknames. The nicknames belong to
// the clients connected now: after a restart they reconnect as new clients
// and pick their names again, so Init drops every saved name but those of
// the clients a room woken from hibernation kept (InitEvent.Clients).
type Chat struct {
	stateroom.BaseService
	nicks   map[stateroom.ClientID]string
	history []string // the last HistoryLength "NAME: text" lines, oldest first
}

// chatSnapshot is the JSON of a snapshot: a struct, so that a later
// version can add fields and still read an older snapshot.
type chatSnapshot struct {
	History []string                      `json:"history"`
	Nicks   map[stateroom.ClientID]string `json:"nicks,omitempty"`
}

// NewChat returns the service of one room.
func NewChat(roomID string) *Chat {
	return &Chat{nicks: make(map[stateroom.ClientID]string)}
}

// Init keeps the names of the clients a room woken from hibernation kept,
// and forgets the others: a restored room's saved names are of clients
// whose connections are gone. A kept client with no saved name (a snapshot
// of an older version) gets its default one.
func (c *Chat) Init(room stateroom.Room, ev stateroom.InitEvent) {
	kept := make(map[stateroom.ClientID]string, len(ev.Clients))
	for _, id := range ev.Clients {
		kept[id] = cmp.Or(c.nicks[id], defaultNick(id))
	}
	c.nicks = kept
}

// Connect names the client "userN" until it picks a nickname, tells it who
// is here ("here: NAME NAME ...", itself included, sorted: nicknames hold
// no spaces) and tells the others.
func (c *Chat) Connect(room stateroom.Room, ev stateroom.ConnectEvent) {
	c.nicks[ev.Client] = defaultNick(ev.Client)
	room.Send(stateroom.To(ev.Client), stateroom.Text(fmt.Sprintf("welcome, %s; set your name with /nick NAME", c.nicks[ev.Client])))
	here := slices.Sorted(maps.Values(c.nicks))
	room.Send(stateroom.To(ev.Client), stateroom.Text("here: "+strings.Join(here, " ")))
	for _, line := range c.history {
		room.Send(stateroom.To(ev.Client), stateroom.Text(line))
	}
	room.Send(stateroom.EveryoneExcept(ev.Client), stateroom.Text(c.nicks[ev.Client]+" joined"))
}

// Disconnect tells the others who left.
func (c *Chat) Disconnect(room stateroom.Room, ev stateroom.DisconnectEvent) {
	name := c.nicks[ev.Client]
	delete(c.nicks, ev.Client)
	room.Send(stateroom.EveryoneExcept(ev.Client), stateroom.Text(name+" left"))
}

// Message handles "/nick NAME" or broadcasts the text as "NAME: text".
func (c *Chat) Message(room stateroom.Room, ev stateroom.MessageEvent) {
	if ev.Payload.Binary {
		room.Send(stateroom.To(ev.Client), stateroom.Text("chat messages are text; binary message ignored"))
		return
	}
	text := string(ev.Payload.Data)
	if rest, ok := strings.CutPrefix(text, "/nick"); ok && (rest == "" || rest[0] == ' ') {
		c.setNick(room, ev.Client, strings.TrimSpace(rest))
		return
	}
	line := c.nicks[ev.Client] + ": " + text
	if len(c.history) == HistoryLength {
		// Drop the oldest in place: the backing array never grows.
		copy(c.history, c.history[1:])
		c.history = c.history[:HistoryLength-1]
	}
	c.history = append(c.history, line)
	room.Send(stateroom.Everyone, stateroom.Text(line))
}

// Snapshot returns the history and the nicknames as JSON.
func (c *Chat) Snapshot() ([]byte, error) {
	return json.Marshal(chatSnapshot{History: c.history, Nicks: c.nicks})
}

// Restore sets the history a Snapshot saved, keeping its latest
// HistoryLength lines should an older version have kept more, and the
// nicknames, which Init then sorts out.
func (c *Chat) Restore(b []byte) error {
	var snap chatSnapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return fmt.Errorf("chat snapshot: %w", err)
	}
	c.history = snap.History[max(0, len(snap.History)-HistoryLength):]
	if snap.Nicks != nil {
		c.nicks = snap.Nicks
	}
	return nil
}

// defaultNick is a client's name until it picks one.
func defaultNick(id stateroom.ClientID) string { return fmt.Sprintf("user%d", id) }

func (c *Chat) setNick(room stateroom.Room, id stateroom.ClientID, nick string) {
	switch {
	case nick == "" || strings.ContainsAny(nick, " \t\r\n"):
		room.Send(stateroom.To(id), stateroom.Text("usage: /nick NAME (one word)"))
		return
	case utf8.RuneCountInString(nick) > MaxNickLength:
		room.Send(stateroom.To(id), stateroom.Text(fmt.Sprintf("nickname too long: at most %d characters", MaxNickLength)))
		return
	}
	for other, n := range c.nicks {
		if n == nick && other != id {
			room.Send(stateroom.To(id), stateroom.Text(fmt.Sprintf("nickname %q is taken; pick another", nick)))
			return
		}
	}
	old := c.nicks[id]
	c.nicks[id] = nick
	room.Send(stateroom.Everyone, stateroom.Text(old+" is now "+nick))
}

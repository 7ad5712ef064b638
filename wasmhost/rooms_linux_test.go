package wasmhost_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stateroom-go/stateroom/internal/gobuild/gobuildtest"
	"github.com/stateroom-go/stateroom/internal/preinit"
	"github.com/stateroom-go/stateroom/server"
	"github.com/stateroom-go/stateroom/test/faults/wsclient"
	"github.com/stateroom-go/stateroom/wasmhost"
)

// Bounds of TestGoGuestRoomsMemory. The counter built by `stateroom build`
// cost 3.06 MiB per room with wazero's own memory, all of it private
// (docs/PERFORMANCE.md, "Go guests"). Pre-initialised, with the mapped
// memory and fault-around off for the image, its guest memory measured
// 120 KiB of proportional RSS (Pss) and 208 KiB of VmRSS per room, and the
// whole process (server, connection, client) 255 KiB of Pss without -race.
// The bounds fail the paths before (guest VmRSS was 0.8 MiB per room with
// fault-around) and leave the new one room to vary, -race included; the
// return bound is the issue's: within 16 MiB of the start.
const (
	goGuestRooms          = 1000
	maxGuestPssPerRoom    = 256 << 10
	maxGuestRSSPerRoom    = 384 << 10
	maxProcessPssPerRoom  = 1 << 20
	maxRSSAboveStartAtEnd = 16 << 20
)

// TestGoGuestRoomsMemory runs 1,000 rooms of the Go counter example,
// pre-initialised as `stateroom build` writes it, each with one client that
// connects and increments, through a real server, and checks the memory a
// room costs and that it comes back once every room has ended.
//
// Pss is the bound of what the machine pays: VmRSS counts a page of the
// shared memory image again in every instance that has mapped it, Pss
// divides it among them. VmRSS of the guest memory is bounded too, where
// the host turns the kernel's fault-around off for the image mappings
// (memory_linux.go), since then it counts only what a room read. Both are
// logged.
func TestGoGuestRoomsMemory(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	pre, _, err := preinit.Run(context.Background(), gobuildtest.Module(t, "../examples/counter", ""), preinit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mod := gobuildtest.Factory(t, pre, wasmhost.Options{Logger: discard})
	srv, err := server.New(mod, server.Options{Logger: discard, RoomGracePeriod: server.EndRoomsImmediately,
		MaxConnectionsPerIP: server.NoLimit, MaxRoomsCreatedPerIP: server.NoLimit})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/"

	// Warm up: the first rooms fault in code and grow the runtime's
	// caches; what they leave is not a room's.
	for i := range 20 {
		c := joinCounter(t, url+"warm-"+strconv.Itoa(i))
		c.Close()
	}
	waitRoomsEnded(t, srv)
	startRSS, startPss := settledMemory(t)

	clients := make([]*wsclient.Raw, 0, goGuestRooms)
	for i := range goGuestRooms {
		clients = append(clients, joinCounter(t, url+"room-"+strconv.Itoa(i)))
	}
	openRSS, openPss := settledMemory(t)
	guest := guestMemory(t)
	t.Logf("%d rooms open: process VmRSS %d -> %d MiB (%d KiB per room), Pss %d -> %d MiB (%d KiB per room); guest memory VmRSS %d MiB, Pss %d MiB (%d KiB per room) in %d mappings",
		goGuestRooms, startRSS>>20, openRSS>>20, (openRSS-startRSS)/goGuestRooms>>10, startPss>>20, openPss>>20, (openPss-startPss)/goGuestRooms>>10,
		guest.rss>>20, guest.pss>>20, guest.pss/goGuestRooms>>10, guest.mappings)
	if per := guest.pss / goGuestRooms; per > maxGuestPssPerRoom {
		t.Errorf("a Go-guest room's guest memory is %d KiB (Pss), want at most %d KiB", per>>10, maxGuestPssPerRoom>>10)
	}
	if err := wasmhost.ImageFaultAroundErr(mod); err != nil {
		t.Logf("guest VmRSS not checked: the image mappings keep fault-around here (%v)", err)
	} else if per := guest.rss / goGuestRooms; per > maxGuestRSSPerRoom {
		t.Errorf("a Go-guest room's guest memory is %d KiB (VmRSS), want at most %d KiB", per>>10, maxGuestRSSPerRoom>>10)
	}
	if per := (openPss - startPss) / goGuestRooms; per > maxProcessPssPerRoom {
		t.Errorf("a Go-guest room costs the process %d KiB (Pss), want at most %d KiB", per>>10, maxProcessPssPerRoom>>10)
	}
	if guest.mappings < goGuestRooms {
		t.Errorf("%d guest memory mappings for %d rooms: the instances' memory is not mapped by the host", guest.mappings, goGuestRooms)
	}

	for _, c := range clients {
		c.Close()
	}
	clients = nil // what is measured next is the server's
	waitRoomsEnded(t, srv)
	ended := time.Now()
	if left := guestMemory(t); left.mappings != 0 {
		t.Errorf("after every room ended, %d guest memory mappings (%d KiB resident) remain", left.mappings, left.rss>>10)
	}
	if raceEnabled {
		return // see raceEnabled; the guest's mappings are gone, checked above
	}
	deadline := ended.Add(10 * time.Second) // the issue asks for 3 s; this is a test on a shared machine
	for {
		rss, _ := settledMemory(t)
		if rss <= startRSS+maxRSSAboveStartAtEnd {
			t.Logf("after the rooms ended: VmRSS %d MiB, %d MiB above the start, %v after the last room ended", rss>>20, (rss-startRSS)>>20, time.Since(ended).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the rooms ended, VmRSS stays at %d MiB, %d MiB above the %d MiB at the start (want at most %d MiB above)", rss>>20, (rss-startRSS)>>20, startRSS>>20, maxRSSAboveStartAtEnd>>20)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// joinCounter connects a client to a counter room and increments it once,
// checking the replies.
func joinCounter(t *testing.T, url string) *wsclient.Raw {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := wsclient.DialRaw(ctx, url, wsclient.RawOptions{BufferSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			c.Close()
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for _, want := range []string{"new value: 0", "clients: 1"} {
		readText(t, c, want)
	}
	if err := c.WriteFrames(wsclient.Message(wsclient.OpText, []byte("increment"))); err != nil {
		t.Fatal(err)
	}
	readText(t, c, "new value: 1")
	_ = c.SetReadDeadline(time.Time{})
	return c
}

func readText(t *testing.T, c *wsclient.Raw, want string) {
	t.Helper()
	f, err := c.ReadFrame()
	if err != nil {
		t.Fatalf("reading %q: %v", want, err)
	}
	if f.Op != wsclient.OpText || string(f.Payload) != want {
		t.Fatalf("got frame %d %q, want text %q", f.Op, f.Payload, want)
	}
}

// waitRoomsEnded waits until the server has no room left.
func waitRoomsEnded(t *testing.T, srv *server.Server) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(srv.Rooms()) > 0 {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile("/proc/self/smaps_rollup")
			t.Logf("%s", b)
			t.Fatalf("%d rooms have not ended a minute after their clients left", len(srv.Rooms()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settledMemory returns VmRSS and Pss after a garbage collection that
// hands freed heap back to the OS, so that the figures are what is live,
// not what the Go heap has yet to return (the server does the same after a
// mass close).
func settledMemory(t *testing.T) (rss, pss int64) {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	return procField(t, "/proc/self/status", "VmRSS:"), procField(t, "/proc/self/smaps_rollup", "Pss:")
}

// guestFootprint is the resident memory of the host's guest memory
// mappings, from /proc/self/smaps.
type guestFootprint struct {
	rss, pss int64
	mappings int
}

// guestMemory sums the instances' memory mappings in /proc/self/smaps:
// each image mapping (/memfd:stateroom-wasm-image) and the anonymous rest
// of the reservation that starts where it ends.
func guestMemory(t *testing.T) guestFootprint {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var g guestFootprint
	in := false
	var imageEnd string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") { // a mapping's header line
			start, end, _ := strings.Cut(fields[0], "-")
			switch {
			case strings.Contains(line, "stateroom-wasm-image"):
				in, imageEnd = true, end
				g.mappings++
			case start == imageEnd && len(fields) == 5: // anonymous, right after an image
				in, imageEnd = true, ""
			default:
				in, imageEnd = false, ""
			}
			continue
		}
		if !in || len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "Rss:":
			g.rss += kb << 10
		case "Pss:":
			g.pss += kb << 10
		}
	}
	return g
}

// procField reads a "Name: N kB" line of a /proc file.
func procField(t testing.TB, path, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				t.Fatalf("%s: %q: %v", path, sc.Text(), err)
			}
			return kb << 10
		}
	}
	t.Fatalf("%s has no %s line", path, field)
	return 0
}

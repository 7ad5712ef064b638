package loadgen_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/stateroom-go/stateroom/bench/hub"
	"github.com/stateroom-go/stateroom/internal/loadgen"
)

// A fan-out run against a relay on loopback: 2 rooms of 5 clients, one
// sender per room with 100 messages; each message reaches the 5 clients of
// its room.
func ExampleFanout() {
	h, err := hub.New(hub.Options{})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Shutdown(context.Background())

	rep, err := loadgen.Fanout(context.Background(), loadgen.Options{
		URL:      "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws",
		Rooms:    2,
		Clients:  5,
		Messages: 100,
		Duration: 30 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("delivered %d of %d, lost %d, duplicates %d, reordered %d\n",
		rep.Delivered, rep.Expected, rep.Lost, rep.Duplicates, rep.Reordered)
	// Output: delivered 1000 of 1000, lost 0, duplicates 0, reordered 0
}

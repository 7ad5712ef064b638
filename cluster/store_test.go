package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateroom-go/stateroom/store"
	"github.com/stateroom-go/stateroom/store/storetest"
)

// startNATS starts a real nats-server with JetStream on a loopback port,
// its files under a temporary directory, and returns a JetStream client of
// it. Both end with the test.
func startNATS(t *testing.T) jetstream.JetStream {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoSigs:    true,
		NoLog:     true,
		// The cluster's embedded servers carry snapshots up to 8 MiB.
		MaxPayload: 8 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not become ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestStoreConformance(t *testing.T) {
	js := startNATS(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		n++
		s, err := NewStore(context.Background(), js, StoreOptions{Bucket: "rooms" + strings.Repeat("x", n%2) + string(rune('a'+n))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// A record damaged in the bucket (written by something else, or by a bug) is
// reported as ErrCorrupt and can be set aside; it is never handed to a room.
func TestStoreCorruptRecord(t *testing.T) {
	js := startNATS(t)
	ctx := context.Background()
	s, err := NewStore(ctx, js, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rev, err := s.Save(ctx, "room", []byte("state"), 0)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, roomKey("room"))
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), e.Value()...)
	bad[len(bad)-1] ^= 1
	if _, err := kv.Update(ctx, roomKey("room"), bad, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "room"); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Load of a damaged record: %v; want ErrCorrupt", err)
	}
	info, err := s.SetAside(ctx, "room", 0, "damaged")
	if err != nil {
		t.Fatal(err)
	}
	if info.Revision != 0 || info.Room != "room" {
		t.Errorf("set-aside info of a damaged record: %+v; want room \"room\", revision 0 (unreadable)", info)
	}
	if _, err := s.LoadSetAside(ctx, info.Name); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("LoadSetAside of the damaged record: %v; want ErrCorrupt", err)
	}
	if _, err := s.Save(ctx, "room", []byte("fresh"), 0); err != nil {
		t.Fatalf("Save after set-aside: %v", err)
	}
}

// Room ids too long for a readable key are hashed, and still listed by id.
func TestStoreLongRoomIDs(t *testing.T) {
	js := startNATS(t)
	ctx := context.Background()
	s, err := NewStore(ctx, js, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	long := strings.Repeat("é", store.MaxRoomLength/2)
	if _, err := s.Save(ctx, long, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	l, err := s.List(ctx)
	if err != nil || len(l) != 1 || l[0].Room != long {
		t.Fatalf("List = %v, %v; want the long id", l, err)
	}
	if rec, err := s.Load(ctx, long); err != nil || string(rec.Data) != "x" {
		t.Fatalf("Load = %+v, %v", rec, err)
	}
}

// A snapshot larger than a NATS message is refused with what to do.
func TestStoreTooLarge(t *testing.T) {
	js := startNATS(t)
	ctx := context.Background()
	s, err := NewStore(ctx, js, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Save(ctx, "big", make([]byte, 9<<20), 0)
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("Save of 9 MiB: %v; want ErrInvalid naming max_payload", err)
	}
}

func TestStoreOptionsChecked(t *testing.T) {
	js := startNATS(t)
	for _, o := range []StoreOptions{{Replicas: 7}, {Replicas: -1}, {Timeout: -time.Second}} {
		if _, err := NewStore(context.Background(), js, o); err == nil {
			t.Errorf("NewStore(%+v) succeeded; want an error", o)
		}
	}
}

// flakyKeyValue is a JetStream client whose KeyValue fails a number of
// times before it reaches the server, as while JetStream elects a leader.
type flakyKeyValue struct {
	jetstream.JetStream
	fails int
}

func (f *flakyKeyValue) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	if f.fails > 0 {
		f.fails--
		return nil, jetstream.ErrBucketNotFound
	}
	return f.JetStream.KeyValue(ctx, bucket)
}

// TestAdjustBucketRetriesKeyValue: a bucket's stream adjusted while
// binding the bucket again fails at first is retried until it binds, and
// returns the bound bucket (a node starting under load panicked there: a
// failed attempt left a nil bucket the next one asked its name).
func TestAdjustBucketRetriesKeyValue(t *testing.T) {
	js := startNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "adjust"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := leaderReads(ctx, &flakyKeyValue{JetStream: js, fails: 2}, kv)
	if err != nil || got == nil || got.Bucket() != "adjust" {
		t.Fatalf("leaderReads after two failed binds = %v, %v; want the bucket bound", got, err)
	}
	s, err := js.Stream(ctx, "KV_adjust")
	if err != nil {
		t.Fatal(err)
	}
	if s.CachedInfo().Config.AllowDirect {
		t.Error("the bucket's stream still allows direct reads")
	}
}

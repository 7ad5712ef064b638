package wasmhost

import "testing"

// BenchmarkSnapshotAfterEvent measures Snapshot of a room that had one
// event since its last snapshot (a busy room at each checkpoint): the
// instances of BenchmarkSnapshot's raw cases, each snapshot preceded by an
// increment, which changes the guest's own page and a global. ns/op
// includes the event (about a microsecond).
func BenchmarkSnapshotAfterEvent(b *testing.B) {
	opts := testOptions()
	opts.MemoryLimit = 1024 * pageSize
	counter := loadGuest(b, "counter", opts)
	for _, c := range rawCases {
		b.Run("raw/"+c.name, func(b *testing.B) {
			s := rawInstance(b, counter, c)
			room := newRoom()
			var size int
			b.ReportAllocs()
			for b.Loop() {
				s.Message(room, text("i"))
				room.TakeSent()
				snap, err := s.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				size = len(snap)
			}
			b.ReportMetric(float64(size), "snapshot-bytes")
		})
	}
}

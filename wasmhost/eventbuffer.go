package wasmhost

import (
	"context"
	"fmt"
	"math/bits"
)

// Sizes of the event buffer a room keeps in guest memory between events.
const (
	// minEventBuffer is the smallest event buffer the host asks the guest
	// for: Init, Connect, Disconnect and Timer (4 or 8 bytes) and short
	// messages fit, so a room of small messages mallocs once in its life.
	minEventBuffer = 64

	// maxRetainedEventBuffer (16 KiB) is the largest event buffer a room
	// keeps between events. An event larger than this gets a buffer of
	// its own, malloc'd before and freed after its stateroom_recv as the
	// ABI describes, so one big message never pins its memory in the
	// guest for the rest of the room's life: a room holds at most 16 KiB
	// of guest memory for events, a quarter of one 64 KiB page. Why 16
	// KiB: the messages of chat, presence and game-state services are far
	// smaller, so they all take the one-call path; and above it the two
	// extra guest calls (about 2 us under the budget: BenchmarkEventSize
	// at 16384 and 16385 bytes) are small beside reading, validating,
	// copying and fanning out the message and the guest's own work on it.
	maxRetainedEventBuffer = 16 << 10
)

// eventBuffer is the buffer a room keeps in guest memory for its events:
// malloc'd once, written and handed to stateroom_recv for every event that
// fits, freed only to make room for a bigger one.
type eventBuffer struct {
	ptr  uint32
	size uint32 // what was malloc'd; 0 when the room holds none
}

// retainedSize is the size of the retained buffer for an event of n bytes
// (0 < n <= maxRetainedEventBuffer): n rounded up to a power of two, at
// least minEventBuffer. Rounding up makes growth geometric, so a room whose
// messages creep up in size re-mallocs a handful of times, not per event.
func retainedSize(n uint32) uint32 {
	return max(minEventBuffer, uint32(1)<<bits.Len32(n-1))
}

// eventBuffer returns where in guest memory to write an event of n bytes,
// and whether that buffer is a one-off the caller must free after
// stateroom_recv. It reuses the retained buffer when the event fits, grows
// it (free, then malloc: the old one is no longer needed, and a simple
// allocator can hand the same space back) when the event is bigger, and
// mallocs a one-off buffer for events over maxRetainedEventBuffer.
func (s *service) eventBuffer(ctx context.Context, n uint32) (ptr uint32, oneOff bool, err error) {
	switch {
	case n == 0:
		// ABI: malloc(0) returns 0 and free(ptr, 0) does nothing, so
		// there is nothing to ask the guest.
		return 0, false, nil
	case n <= s.buf.size:
		return s.buf.ptr, false, nil
	case n > maxRetainedEventBuffer:
		ptr, err = s.guestMalloc(ctx, n)
		return ptr, true, err
	}
	if old := s.buf; old.size > 0 {
		s.buf = eventBuffer{}
		if err := s.guestFree(ctx, old.ptr, old.size); err != nil {
			return 0, false, err
		}
	}
	size := retainedSize(n)
	if ptr, err = s.guestMalloc(ctx, size); err != nil {
		return 0, false, err
	}
	s.buf = eventBuffer{ptr: ptr, size: size}
	return ptr, false, nil
}

// guestMalloc calls stateroom_malloc(n) (n > 0) and checks that the n bytes
// at the pointer it returns lie in the guest's memory. Linear memory never
// shrinks, so they stay there for the life of the instance.
func (s *service) guestMalloc(ctx context.Context, n uint32) (uint32, error) {
	s.stack[0] = uint64(n)
	if err := s.malloc.CallWithStack(ctx, s.stack[:]); err != nil {
		return 0, s.callError(ctx, "stateroom_malloc", err)
	}
	ptr := uint32(s.stack[0])
	if _, ok := s.mem.Read(ptr, n); !ok || ptr == 0 {
		return 0, s.mallocError(n, ptr)
	}
	return ptr, nil
}

// mallocError is ErrMalloc for a stateroom_malloc(n) that returned ptr.
func (s *service) mallocError(n, ptr uint32) error {
	return fmt.Errorf("%w: stateroom_malloc(%d) returned %#x in a %d-byte memory; it must return a non-zero address with %d bytes of memory after it", ErrMalloc, n, ptr, s.mem.Size(), n)
}

// guestFree calls stateroom_free(ptr, n).
func (s *service) guestFree(ctx context.Context, ptr, n uint32) error {
	s.stack[0], s.stack[1] = uint64(ptr), uint64(n)
	if err := s.free.CallWithStack(ctx, s.stack[:]); err != nil {
		return s.callError(ctx, "stateroom_free", err)
	}
	return nil
}

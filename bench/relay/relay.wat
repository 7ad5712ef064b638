;; relay.wat: the relay service (every message, verbatim and of the same
;; kind, to everyone in the room) as a hand-written Stateroom guest, for
;; measuring the wasm path against the native relay (relay.go).
;;
;; It copies nothing. An event Message(3){sender, payload} and the command
;; Message(0){Broadcast(0), payload} differ only in their first eight bytes:
;;
;;   offset    0        4                  8            12         20
;;   event     3 (u32)  sender (u32)       payload tag  length u64 bytes
;;   command   0 (u32)  Broadcast 0 (u32)  payload tag  length u64 bytes
;;
;; so stateroom_recv overwrites those eight bytes with zeros and hands the
;; same buffer to stateroom_send. The buffer is the guest's (its own
;; stateroom_malloc made it) and the host reads it only during the send.
;; Every other event is ignored, as the native relay ignores it.
;;
;; stateroom_malloc is a bump allocator that returns 0 (which the host
;; reports as a failed malloc) rather than trapping when memory cannot
;; grow. stateroom_free takes back the newest allocation, which is how the
;; host uses them (malloc, recv, free, one event at a time), so the heap is
;; back at its start after every event; any other free is ignored (a leak,
;; never a corruption).
(module
  (import "env" "stateroom_send" (func $send (param i32 i32)))

  (memory (export "memory") 1)
  ;; The version globals hold addresses of little-endian i32s: 1 and 0.
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))

  ;; The heap starts above the version words.
  (global $heap (mut i32) (i32.const 64))

  ;; $align rounds a size up to 8 bytes, so the u64 length of the next
  ;; event is aligned.
  (func $align (param $size i32) (result i32)
    (i32.and (i32.add (local.get $size) (i32.const 7)) (i32.const -8)))

  (func (export "stateroom_malloc") (param $size i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (local.set $p (global.get $heap))
    ;; Sizes near 4 GiB wrap the 32-bit end: refuse them.
    (if (i32.gt_u (local.get $size) (i32.sub (i32.const -8) (local.get $p)))
      (then (return (i32.const 0))))
    (local.set $end (i32.add (local.get $p) (call $align (local.get $size))))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)) (i32.const 1)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func (export "stateroom_free") (param $ptr i32) (param $size i32)
    (if (i32.eqz (local.get $size)) (then (return)))
    (if (i32.eq (i32.add (local.get $ptr) (call $align (local.get $size))) (global.get $heap))
      (then (global.set $heap (local.get $ptr)))))

  (func (export "stateroom_recv") (param $ptr i32) (param $len i32)
    ;; A Message event is at least 20 bytes: tag, sender, payload tag and
    ;; length.
    (if (i32.lt_u (local.get $len) (i32.const 20)) (then (return)))
    (if (i32.ne (i32.load (local.get $ptr)) (i32.const 3)) (then (return)))
    (i64.store (local.get $ptr) (i64.const 0))
    (call $send (local.get $ptr) (local.get $len))))

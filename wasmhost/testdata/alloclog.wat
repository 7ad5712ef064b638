;; alloclog.wat: a guest that logs every stateroom_malloc and stateroom_free
;; the host makes, for the tests of the host's event buffer
;; (eventbuffer_test.go).
;;
;; Every event is broadcast back verbatim as Message{Broadcast, Bytes(event)},
;; as relay.wat does, so the tests also compare each event's bytes with the
;; ABI's vectors. A Message event whose payload is Text("?") is answered,
;; after that envelope, with the log: Message{Broadcast, Bytes(records)}, one
;; 12-byte record per call since the last "?": kind u32 (1 malloc, 2 free),
;; ptr u32 (what malloc returned, or what free was given), size u32, all
;; little-endian. The log then starts over; the "?" event's own delivery is in
;; the log it answers. More than 595 calls between two "?" trap.
;;
;; stateroom_malloc is a bump allocator that returns 0 for size 0 (as the ABI
;; says); stateroom_free of the latest allocation gives its space back, any
;; other free leaks it. Linear memory grows as needed.
(module
  (import "env" "stateroom_send" (func $send (param i32 i32)))

  (memory (export "memory") 1)
  ;; The version globals hold addresses of little-endian i32s: 1 and 0.
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))

  ;; The log's envelope header is at 1024, its records from 1044 to 8192.
  (global $logEnd (mut i32) (i32.const 1044))
  (global $heap (mut i32) (i32.const 8192))

  ;; $record appends one record to the log.
  (func $record (param $kind i32) (param $ptr i32) (param $size i32)
    (if (i32.gt_u (i32.add (global.get $logEnd) (i32.const 12)) (i32.const 8192))
      (then unreachable))
    (i32.store (global.get $logEnd) (local.get $kind))
    (i32.store offset=4 (global.get $logEnd) (local.get $ptr))
    (i32.store offset=8 (global.get $logEnd) (local.get $size))
    (global.set $logEnd (i32.add (global.get $logEnd) (i32.const 12))))

  ;; $align rounds a size up to 8 bytes.
  (func $align (param $size i32) (result i32)
    (i32.and (i32.add (local.get $size) (i32.const 7)) (i32.const -8)))

  ;; $alloc bumps the heap, growing memory as needed.
  (func $alloc (param $size i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.add (local.get $p) (call $align (local.get $size))))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)) (i32.const 1)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func (export "stateroom_malloc") (param $size i32) (result i32)
    (local $p i32)
    (if (i32.eqz (local.get $size))
      (then
        (call $record (i32.const 1) (i32.const 0) (i32.const 0))
        (return (i32.const 0))))
    (local.set $p (call $alloc (local.get $size)))
    (call $record (i32.const 1) (local.get $p) (local.get $size))
    (local.get $p))

  (func (export "stateroom_free") (param $ptr i32) (param $size i32)
    (call $record (i32.const 2) (local.get $ptr) (local.get $size))
    (if (i32.eqz (local.get $size)) (then (return)))
    (if (i32.eq (i32.add (local.get $ptr) (call $align (local.get $size))) (global.get $heap))
      (then (global.set $heap (local.get $ptr)))))

  (func (export "stateroom_recv") (param $ptr i32) (param $len i32)
    (local $saved i32) (local $e i32)
    (local.set $saved (global.get $heap))
    ;; The envelope: Message(0){Broadcast(0), Bytes(0){len, bytes}}.
    (local.set $e (call $alloc (i32.add (local.get $len) (i32.const 20))))
    (i32.store (local.get $e) (i32.const 0))
    (i32.store offset=4 (local.get $e) (i32.const 0))
    (i32.store offset=8 (local.get $e) (i32.const 0))
    (i64.store offset=12 (local.get $e) (i64.extend_i32_u (local.get $len)))
    (memory.copy (i32.add (local.get $e) (i32.const 20)) (local.get $ptr) (local.get $len))
    (call $send (local.get $e) (i32.add (local.get $len) (i32.const 20)))
    (global.set $heap (local.get $saved))
    ;; Message(3){sender @4, Text(1) @8, length 1 @12, "?" @20}: 21 bytes.
    (if (i32.ne (local.get $len) (i32.const 21)) (then (return)))
    (if (i32.ne (i32.load (local.get $ptr)) (i32.const 3)) (then (return)))
    (if (i32.ne (i32.load offset=8 (local.get $ptr)) (i32.const 1)) (then (return)))
    (if (i32.ne (i32.load8_u offset=20 (local.get $ptr)) (i32.const 0x3f)) (then (return)))
    (i32.store (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 0))
    (i32.store (i32.const 1032) (i32.const 0))
    (i64.store (i32.const 1036) (i64.extend_i32_u (i32.sub (global.get $logEnd) (i32.const 1044))))
    (call $send (i32.const 1024) (i32.sub (global.get $logEnd) (i32.const 1024)))
    (global.set $logEnd (i32.const 1044))))

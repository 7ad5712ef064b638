;; bigdata.wat: counter.wat (see there for its commands) with two pages
;; of memory and data in 24 of their 4 KiB pages, enough for the host to
;; share its memory image between instances through a file rather than
;; copy it into each (wasmhost/memory.go, minSharedPages). Generated from
;; counter.wat; keep the two in step.
;; counter.wat: a guest without the snapshot exports, whose state lives
;; both in linear memory and in a mutable global, for the host's raw-memory
;; snapshots (snapshot_test.go).
;;
;; After every event it broadcasts Bytes of six little-endian u32s:
;;   the counter in memory (at 256), the counter in the global $count,
;;   memory.size in pages, the clients it knows of (Connect adds one,
;;   Disconnect takes one), the Init events it got, and the marker stored
;;   at the start of its last page.
;; A text message is a command, by its first byte:
;;   i  add one to both counters
;;   g  grow memory by one page and store 1000 + the new page's index at
;;      its start (the marker)
;;   t  trap (unreachable)
;; stateroom_malloc is a bump allocator; stateroom_free takes back the last
;; allocation and ignores any other.
(module
  (import "env" "stateroom_send" (func $send (param i32 i32)))

  (memory (export "memory") 2)
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))

  (global $heap (mut i32) (i32.const 4096))
  (global $count (mut i32) (i32.const 0))

  (func $align (param $size i32) (result i32)
    (i32.and (i32.add (local.get $size) (i32.const 7)) (i32.const -8)))

  (func (export "stateroom_malloc") (param $size i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
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

  (func (export "stateroom_free") (param $ptr i32) (param $size i32)
    (if (i32.eq (i32.add (local.get $ptr) (call $align (local.get $size))) (global.get $heap))
      (then (global.set $heap (local.get $ptr)))))

  (func (export "stateroom_recv") (param $ptr i32) (param $len i32)
    (local $tag i32) (local $last i32)
    (local.set $tag (i32.load (local.get $ptr)))
    (if (i32.eqz (local.get $tag)) ;; Init
      (then (i32.store (i32.const 264) (i32.add (i32.load (i32.const 264)) (i32.const 1)))))
    (if (i32.eq (local.get $tag) (i32.const 1)) ;; Connect
      (then (i32.store (i32.const 260) (i32.add (i32.load (i32.const 260)) (i32.const 1)))))
    (if (i32.eq (local.get $tag) (i32.const 2)) ;; Disconnect
      (then (i32.store (i32.const 260) (i32.sub (i32.load (i32.const 260)) (i32.const 1)))))
    ;; Message(3){sender @4, payload tag @8 (1: text), length @12, bytes @20}
    (if (i32.and
          (i32.eq (local.get $tag) (i32.const 3))
          (i32.and (i32.eq (i32.load offset=8 (local.get $ptr)) (i32.const 1))
                   (i64.ne (i64.load offset=12 (local.get $ptr)) (i64.const 0))))
      (then (call $command (i32.load8_u offset=20 (local.get $ptr)))))
    ;; The reply: Message(0){Broadcast(0), Bytes(0){24, six u32s}} at 512.
    (local.set $last (i32.mul (i32.sub (memory.size) (i32.const 1)) (i32.const 65536)))
    (i32.store (i32.const 512) (i32.const 0))
    (i32.store (i32.const 516) (i32.const 0))
    (i32.store (i32.const 520) (i32.const 0))
    (i64.store (i32.const 524) (i64.const 24))
    (i32.store (i32.const 532) (i32.load (i32.const 256)))
    (i32.store (i32.const 536) (global.get $count))
    (i32.store (i32.const 540) (memory.size))
    (i32.store (i32.const 544) (i32.load (i32.const 260)))
    (i32.store (i32.const 548) (i32.load (i32.const 264)))
    (i32.store (i32.const 552) (i32.load (local.get $last)))
    (call $send (i32.const 512) (i32.const 44)))

  (func $command (param $c i32)
    (local $page i32)
    (if (i32.eq (local.get $c) (i32.const 0x69)) ;; i
      (then
        (i32.store (i32.const 256) (i32.add (i32.load (i32.const 256)) (i32.const 1)))
        (global.set $count (i32.add (global.get $count) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 0x67)) ;; g
      (then
        (local.set $page (memory.grow (i32.const 1)))
        (if (i32.eq (local.get $page) (i32.const -1)) (then unreachable))
        (i32.store (i32.mul (local.get $page) (i32.const 65536))
                   (i32.add (i32.const 1000) (local.get $page)))))
    (if (i32.eq (local.get $c) (i32.const 0x74)) ;; t
      (then unreachable)))  (data (i32.const 34816) "page 8")
  (data (i32.const 38912) "page 9")
  (data (i32.const 43008) "page 10")
  (data (i32.const 47104) "page 11")
  (data (i32.const 51200) "page 12")
  (data (i32.const 55296) "page 13")
  (data (i32.const 59392) "page 14")
  (data (i32.const 63488) "page 15")
  (data (i32.const 67584) "page 16")
  (data (i32.const 71680) "page 17")
  (data (i32.const 75776) "page 18")
  (data (i32.const 79872) "page 19")
  (data (i32.const 83968) "page 20")
  (data (i32.const 88064) "page 21")
  (data (i32.const 92160) "page 22")
  (data (i32.const 96256) "page 23")
  (data (i32.const 100352) "page 24")
  (data (i32.const 104448) "page 25")
  (data (i32.const 108544) "page 26")
  (data (i32.const 112640) "page 27")
  (data (i32.const 116736) "page 28")
  (data (i32.const 120832) "page 29")
  (data (i32.const 124928) "page 30")
  (data (i32.const 129024) "page 31")
)

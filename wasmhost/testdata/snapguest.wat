;; snapguest.wat: a guest with the ABI's snapshot exports (ABI.md,
;; "Extension: snapshots"), for the host's side of them (snapshot_test.go).
;; Its state is one u32 counter at 256; its snapshot is those four bytes.
;;
;; After every event it broadcasts Bytes(the counter, u32). A text message
;; is a command, by its first byte:
;;   i  add one to the counter
;; and the others set what stateroom_snapshot does next:
;;   n  return 0 (no snapshot of its own: the host takes raw memory)
;;   f  write a line to stderr and return -1 (failed)
;;   o  return a pair whose bytes lie outside memory
;;   a  return an address outside memory
;;   t  trap                       l  loop forever
;; stateroom_restore takes exactly four bytes (else it writes a line to
;; stderr and returns 1, refused): 0xffff returns 2 (incompatible), 0xdead
;; traps, any other value becomes the counter.
(module
  (import "env" "stateroom_send" (func $send (param i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))
  (data (i32.const 64) "snapshot failed on purpose\n")
  (data (i32.const 96) "restore: want 4 bytes\n")

  (global $heap (mut i32) (i32.const 4096))
  (global $mode (mut i32) (i32.const 0x73)) ;; s: a snapshot of its own

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
    (local $c i32)
    (if (i32.and
          (i32.eq (i32.load (local.get $ptr)) (i32.const 3))
          (i32.and (i32.eq (i32.load offset=8 (local.get $ptr)) (i32.const 1))
                   (i64.ne (i64.load offset=12 (local.get $ptr)) (i64.const 0))))
      (then
        (local.set $c (i32.load8_u offset=20 (local.get $ptr)))
        (if (i32.eq (local.get $c) (i32.const 0x69)) ;; i
          (then (i32.store (i32.const 256) (i32.add (i32.load (i32.const 256)) (i32.const 1))))
          (else (global.set $mode (local.get $c))))))
    ;; The reply: Message(0){Broadcast(0), Bytes(0){4, counter}} at 512.
    (i32.store (i32.const 512) (i32.const 0))
    (i32.store (i32.const 516) (i32.const 0))
    (i32.store (i32.const 520) (i32.const 0))
    (i64.store (i32.const 524) (i64.const 4))
    (i32.store (i32.const 532) (i32.load (i32.const 256)))
    (call $send (i32.const 512) (i32.const 24)))

  (func (export "stateroom_snapshot") (result i32)
    (if (i32.eq (global.get $mode) (i32.const 0x6e)) ;; n
      (then (return (i32.const 0))))
    (if (i32.eq (global.get $mode) (i32.const 0x66)) ;; f
      (then
        (call $write (i32.const 64) (i32.const 27))
        (return (i32.const -1))))
    (if (i32.eq (global.get $mode) (i32.const 0x6f)) ;; o
      (then
        (i32.store (i32.const 300) (i32.const 0xffffff00))
        (i32.store (i32.const 304) (i32.const 512))
        (return (i32.const 300))))
    (if (i32.eq (global.get $mode) (i32.const 0x61)) ;; a
      (then (return (i32.const -16))))
    (if (i32.eq (global.get $mode) (i32.const 0x74)) ;; t
      (then unreachable))
    (if (i32.eq (global.get $mode) (i32.const 0x6c)) ;; l
      (then (loop $forever (br $forever))))
    (i32.store (i32.const 300) (i32.const 256))
    (i32.store (i32.const 304) (i32.const 4))
    (i32.const 300))

  (func (export "stateroom_restore") (param $ptr i32) (param $len i32) (result i32)
    (local $v i32)
    (if (i32.ne (local.get $len) (i32.const 4))
      (then
        (call $write (i32.const 96) (i32.const 22))
        (return (i32.const 1))))
    (local.set $v (i32.load (local.get $ptr)))
    (if (i32.eq (local.get $v) (i32.const 0xffff)) (then (return (i32.const 2))))
    (if (i32.eq (local.get $v) (i32.const 0xdead)) (then unreachable))
    (i32.store (i32.const 256) (local.get $v))
    (i32.const 0))

  ;; $write writes len bytes at buf to stderr, trapping if fd_write fails.
  (func $write (param $buf i32) (param $len i32)
    (i32.store (i32.const 400) (local.get $buf))
    (i32.store (i32.const 404) (local.get $len))
    (if (call $fd_write (i32.const 2) (i32.const 400) (i32.const 1) (i32.const 408))
      (then unreachable))))

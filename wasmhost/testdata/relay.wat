;; relay.wat: the main test guest of package wasmhost.
;;
;; For every event it broadcasts the exact bytes it received, wrapped as
;; Message{Broadcast, Bytes(event)}, so the host's tests compare the encoding
;; of every event kind with the ABI's vectors. A Message event whose payload
;; is binary is taken as a raw MessageFromProcess and handed verbatim to
;; stateroom_send, so the tests drive every send (every recipient, timers,
;; malformed bytes) from the host side. A text payload is a command, by its
;; first byte:
;;   t  trap (unreachable)            l  loop forever
;;   g  grow memory a page at a time until memory.grow fails, then trap
;;   x  proc_exit(3)                  o  stateroom_send out of bounds
;;   p  write a line to stdout and one to stderr (fd_write)
;;   c  broadcast Bytes(realtime ns u64, monotonic ns u64, 16 random bytes)
;;   e  broadcast Bytes(argc, argv size, envc, environ size, the errno of
;;      fd_prestat_get(3)), five u32s: what the sandbox shows of the world
;;   s  sleep 20 s in poll_oneoff, one subscription to a relative clock (what
;;      time.Sleep compiles to); trap if poll_oneoff fails
;;   w  sleep 50 ms the same way
;; stateroom_malloc is a bump allocator that counts live allocations in the
;; exported global "live"; stateroom_free traps unless it frees the last
;; allocation with its exact size, which is how the host must use them.
(module
  (import "env" "stateroom_send" (func $send (param i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 2)
  ;; The version globals hold addresses of little-endian i32s: 1 and 0.
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))
  (data (i32.const 64) "hello from stdout\n")
  (data (i32.const 96) "oops on stderr\n")

  (global $heap (mut i32) (i32.const 1024))
  (global $live (export "live") (mut i32) (i32.const 0))

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
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (global.set $live (i32.add (global.get $live) (i32.const 1)))
    (call $alloc (local.get $size)))

  (func (export "stateroom_free") (param $ptr i32) (param $size i32)
    (if (i32.eqz (local.get $size)) (then (return)))
    (if (i32.ne (i32.add (local.get $ptr) (call $align (local.get $size))) (global.get $heap))
      (then unreachable))
    (global.set $heap (local.get $ptr))
    (global.set $live (i32.sub (global.get $live) (i32.const 1))))

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
    ;; Message(3){sender @4, payload tag @8, length @12, bytes @20}
    (if (i32.eq (i32.load (local.get $ptr)) (i32.const 3))
      (then
        (if (i32.eqz (i32.load offset=8 (local.get $ptr)))
          (then
            (call $send
              (i32.add (local.get $ptr) (i32.const 20))
              (i32.wrap_i64 (i64.load offset=12 (local.get $ptr)))))
          (else
            (if (i64.ne (i64.load offset=12 (local.get $ptr)) (i64.const 0))
              (then (call $command (i32.load8_u offset=20 (local.get $ptr)))))))))
    (global.set $heap (local.get $saved)))

  (func $command (param $c i32)
    (local $p i32)
    (if (i32.eq (local.get $c) (i32.const 0x74)) ;; t
      (then unreachable))
    (if (i32.eq (local.get $c) (i32.const 0x6c)) ;; l
      (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $c) (i32.const 0x67)) ;; g
      (then
        (loop $more
          (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
        unreachable))
    (if (i32.eq (local.get $c) (i32.const 0x78)) ;; x
      (then (call $proc_exit (i32.const 3))))
    (if (i32.eq (local.get $c) (i32.const 0x6f)) ;; o
      (then (call $send (i32.const 0xffffff00) (i32.const 512))))
    (if (i32.eq (local.get $c) (i32.const 0x70)) ;; p
      (then
        (call $write (i32.const 1) (i32.const 64) (i32.const 18))
        (call $write (i32.const 2) (i32.const 96) (i32.const 15))))
    (if (i32.eq (local.get $c) (i32.const 0x63)) ;; c
      (then
        (local.set $p (call $alloc (i32.const 52)))
        (i32.store (local.get $p) (i32.const 0))
        (i32.store offset=4 (local.get $p) (i32.const 0))
        (i32.store offset=8 (local.get $p) (i32.const 0))
        (i64.store offset=12 (local.get $p) (i64.const 32))
        (if (call $clock_time_get (i32.const 0) (i64.const 1) (i32.add (local.get $p) (i32.const 20)))
          (then unreachable))
        (if (call $clock_time_get (i32.const 1) (i64.const 1) (i32.add (local.get $p) (i32.const 28)))
          (then unreachable))
        (if (call $random_get (i32.add (local.get $p) (i32.const 36)) (i32.const 16))
          (then unreachable))
        (call $send (local.get $p) (i32.const 52))))
    (if (i32.eq (local.get $c) (i32.const 0x65)) ;; e
      (then
        (local.set $p (call $alloc (i32.const 48)))
        (i32.store (local.get $p) (i32.const 0))
        (i32.store offset=4 (local.get $p) (i32.const 0))
        (i32.store offset=8 (local.get $p) (i32.const 0))
        (i64.store offset=12 (local.get $p) (i64.const 20))
        (if (call $args_sizes_get (i32.add (local.get $p) (i32.const 20)) (i32.add (local.get $p) (i32.const 24)))
          (then unreachable))
        (if (call $environ_sizes_get (i32.add (local.get $p) (i32.const 28)) (i32.add (local.get $p) (i32.const 32)))
          (then unreachable))
        (i32.store offset=36 (local.get $p)
          (call $fd_prestat_get (i32.const 3) (i32.add (local.get $p) (i32.const 40))))
        (call $send (local.get $p) (i32.const 40))))
    (if (i32.eq (local.get $c) (i32.const 0x73)) ;; s
      (then (call $sleep (i64.const 20000000000))))
    (if (i32.eq (local.get $c) (i32.const 0x77)) ;; w
      (then (call $sleep (i64.const 50000000)))))

  ;; $sleep sleeps ns nanoseconds with poll_oneoff: one subscription (48
  ;; bytes at 640: userdata 0, tag 0 = clock, clock id 1 = monotonic at
  ;; 656, timeout at 664, precision 0, flags 0 = relative at 680), its event
  ;; written at 704 and the event count at 736. It traps if poll_oneoff
  ;; fails.
  (func $sleep (param $ns i64)
    (memory.fill (i32.const 640) (i32.const 0) (i32.const 48))
    (i32.store (i32.const 656) (i32.const 1))
    (i64.store (i32.const 664) (local.get $ns))
    (if (call $poll_oneoff (i32.const 640) (i32.const 704) (i32.const 1) (i32.const 736))
      (then unreachable)))

  ;; $write writes len bytes at buf to fd, trapping if fd_write fails.
  (func $write (param $fd i32) (param $buf i32) (param $len i32)
    (i32.store (i32.const 512) (local.get $buf))
    (i32.store (i32.const 516) (local.get $len))
    (if (call $fd_write (local.get $fd) (i32.const 512) (i32.const 1) (i32.const 520))
      (then unreachable))))

;; reactor.wat: a reactor like a Go -buildmode=c-shared module. The host must
;; call _initialize exactly once, before any other export: stateroom_recv
;; traps otherwise, and answers every event with a broadcast of Text("ready").
(module
  (import "env" "stateroom_send" (func $send (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))
  ;; Message{Broadcast, Text("ready")}
  (data (i32.const 32) "\00\00\00\00\00\00\00\00\01\00\00\00\05\00\00\00\00\00\00\00ready")
  (global $inits (mut i32) (i32.const 0))
  (func (export "_initialize")
    (global.set $inits (i32.add (global.get $inits) (i32.const 1))))
  (func (export "stateroom_malloc") (param i32) (result i32)
    (if (i32.ne (global.get $inits) (i32.const 1)) (then unreachable))
    (i32.const 1024))
  (func (export "stateroom_free") (param i32 i32))
  (func (export "stateroom_recv") (param i32 i32)
    (if (i32.ne (global.get $inits) (i32.const 1)) (then unreachable))
    (call $send (i32.const 32) (i32.const 25))))

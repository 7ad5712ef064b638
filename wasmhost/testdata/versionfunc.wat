;; versionfunc.wat: the fallback for Go modules that were not patched with
;; the version globals (Go cannot export globals): the functions
;; stateroom_api_version and stateroom_api_protocol return the values
;; themselves. Every event is answered with a broadcast of Text("ready").
(module
  (import "env" "stateroom_send" (func $send (param i32 i32)))
  (memory (export "memory") 1)
  ;; Message{Broadcast, Text("ready")}
  (data (i32.const 32) "\00\00\00\00\00\00\00\00\01\00\00\00\05\00\00\00\00\00\00\00ready")
  (func (export "stateroom_api_version") (result i32) (i32.const 1))
  (func (export "stateroom_api_protocol") (result i32) (i32.const 0))
  (func (export "stateroom_malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "stateroom_free") (param i32 i32))
  (func (export "stateroom_recv") (param i32 i32)
    (call $send (i32.const 32) (i32.const 25))))

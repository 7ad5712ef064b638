;; version2.wat: a module built for a future ABI: version 2, protocol 0. The
;; host must refuse it at load.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "\02\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))
  (func (export "stateroom_malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "stateroom_free") (param i32 i32))
  (func (export "stateroom_recv") (param i32 i32)))

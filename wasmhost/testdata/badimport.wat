;; badimport.wat: imports a function the host does not provide
;; (env.database_query) and a WASI function with the wrong signature
;; (fd_write with three parameters). The host must name both at load.
(module
  (import "env" "database_query" (func (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))
  (func (export "stateroom_malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "stateroom_free") (param i32 i32))
  (func (export "stateroom_recv") (param i32 i32)))

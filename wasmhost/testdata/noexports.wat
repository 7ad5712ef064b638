;; noexports.wat: exports are missing (memory, stateroom_recv) or wrongly
;; typed (stateroom_malloc takes an i64). The host must name each at load.
(module
  (memory 1)
  (data (i32.const 16) "\01\00\00\00\00\00\00\00")
  (global (export "STATEROOM_API_VERSION") i32 (i32.const 16))
  (global (export "STATEROOM_API_PROTOCOL") i32 (i32.const 20))
  (func (export "stateroom_malloc") (param i64) (result i32) (i32.const 1024))
  (func (export "stateroom_free") (param i32 i32)))

;; A reactor shaped like a Go -buildmode=c-shared module, small enough to
;; fuzz: an imported global, two defined globals, the guest SDK's ABI values
;; in a data segment (after zero bytes, as the Go linker lays them out), and
;; an exported _initialize that must run before the other exports.
;; Rebuild with: wat2wasm reactor.wat -o reactor.wasm
(module
  (import "env" "g" (global $imported i32))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (global $other (mut i64) (i64.const 0))
  (func $init (export "_initialize")
    (global.set $ready (i32.const 1)))
  (func (export "ready") (result i32)
    (global.get $ready))
  (data (i32.const 100) "go data")
  (data (i32.const 1024) "\ffstateroom-abi\ff\01\01\00\00\00\00\00\00\00\feend")
  (data (i32.const 2048) "more"))

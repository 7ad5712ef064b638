;; spin.wat: a CPU-bound guest for benchmarks. stateroom_recv counts down a
;; tight loop of 1 000 000 iterations and returns, so the cost of the budget
;; checks wazero compiles into loops shows against an unchecked build.
(module
  (memory (export "memory") 1)
  (func (export "stateroom_api_version") (result i32) (i32.const 1))
  (func (export "stateroom_api_protocol") (result i32) (i32.const 0))
  (func (export "stateroom_malloc") (param i32) (result i32) (i32.const 1024))
  (func (export "stateroom_free") (param i32 i32))
  (global $sink (mut i32) (i32.const 0))
  (func (export "stateroom_recv") (param i32 i32)
    (local $n i32)
    (local.set $n (i32.const 1000000))
    (loop $spin
      (global.set $sink (i32.add (global.get $sink) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $spin (local.get $n)))))

;; A module with no guest SDK ABI values: Patch must refuse it.
;; Rebuild with: wat2wasm noguest.wat -o noguest.wasm
(module
  (memory (export "memory") 1)
  (func (export "_initialize"))
  (data (i32.const 16) "hello"))

;; A data segment at an offset taken from an imported global, known only
;; at instantiation: TakeData must refuse the module.
;; Rebuild with: wat2wasm globaloffset.wat -o globaloffset.wasm
(module
  (import "env" "base" (global $base i32))
  (memory (export "memory") 1)
  (data (global.get $base) "moved"))

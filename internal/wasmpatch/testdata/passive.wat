;; A passive data segment, copied by memory.init when the guest asks:
;; TakeData must refuse the module, which keeps its data.
;; Rebuild with: wat2wasm passive.wat -o passive.wasm
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "active")
  (data $p "passive")
  (func (export "init") (memory.init $p (i32.const 100) (i32.const 0) (i32.const 7))))

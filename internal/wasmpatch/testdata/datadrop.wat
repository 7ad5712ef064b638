;; Active data segments and a data count section (data.drop names a
;; segment by index): TakeData must keep both segments, emptied, so the
;; module still validates.
;; Rebuild with: wat2wasm datadrop.wat -o datadrop.wasm
(module
  (memory (export "memory") 2)
  (data $a (i32.const 16) "hello")
  (data $b (i32.const 65540) "world")
  (func (export "drop") (data.drop $a)))

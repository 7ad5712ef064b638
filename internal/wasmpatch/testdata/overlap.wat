;; Overlapping data segments: the later one wins, so Patch must not reorder
;; or merge them.
;; Rebuild with: wat2wasm overlap.wat -o overlap.wasm
(module
  (memory 1)
  (data (i32.const 0) "\ffstateroom-abi\ff\01\01\00\00\00\00\00\00\00\feend")
  (data (i32.const 40) "aaaa")
  (data (i32.const 42) "bb"))

;; The ABI values but no global, export or start section yet, and a passive
;; segment: Patch must create the sections in the right order.
;; Rebuild with: wat2wasm noglobals.wat -o noglobals.wasm
(module
  (memory 1)
  (data "passive")
  (data (i32.const 8) "\ffstateroom-abi\ff\01\01\00\00\00\00\00\00\00\feend"))

;; The ABI values twice: Patch cannot tell which one the guest reads.
;; Rebuild with: wat2wasm twice.wat -o twice.wasm
(module
  (memory 1)
  (data (i32.const 8) "\ffstateroom-abi\ff\01\01\00\00\00\00\00\00\00\feend")
  (data (i32.const 64) "\ffstateroom-abi\ff\01\01\00\00\00\00\00\00\00\feend"))

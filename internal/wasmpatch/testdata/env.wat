;; Provides the global reactor.wasm imports, for the tests.
;; Rebuild with: wat2wasm env.wat -o env.wasm
(module (global (export "g") i32 (i32.const 7)))

;; Data segments separated by gaps around FreezeMergeGap (7) and
;; MaxMergeGap (4096) zero bytes, one out of address order: MergeData joins
;; exactly the segments whose gap is at most the one it is given.
;; Rebuild with: wat2wasm gaps.wat -o gaps.wasm
(module
  (memory 1)
  (data (i32.const 16) "aa")    ;; ends at 18
  (data (i32.const 25) "bb")    ;; gap 7, ends at 27
  (data (i32.const 4133) "dd")  ;; gap 4096 after "cc", ends at 4135
  (data (i32.const 35) "cc")    ;; gap 8 after "bb", ends at 37
  (data (i32.const 8232) "ee")) ;; gap 4097

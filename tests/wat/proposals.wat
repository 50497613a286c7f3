;; A WASI preview 1 command using proposals the wasmtime CLI enables by default besides
;; exceptions and GC: SIMD, relaxed SIMD, multi-memory, memory64, extended constant
;; expressions, atomics (threads) and bulk memory. Each computes one digit of its line, so a
;; feature that is off fails validation and one that misbehaves prints a wrong digit:
;; "simd 6 relaxed 5 memory64 9 const 8 atomics 3".
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory $main (export "memory") 1)
  (memory $wide i64 1)
  (global $base i32 (i32.const 5))
  (global $extended i32 (i32.add (global.get $base) (i32.const 3)))
  (data $line (memory $main) (i32.const 100) "simd ? relaxed ? memory64 ? const ? atomics ?\n")

  (func $digit (param $at i32) (param $value i32)
    (i32.store8 (local.get $at) (i32.add (i32.const 48) (local.get $value))))

  (func (export "_start")
    ;; SIMD: lane 2 of [1,2,3,4] + [1,2,3,4] = 6.
    (call $digit (i32.const 105)
      (i32x4.extract_lane 2
        (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 1 2 3 4))))
    ;; Relaxed SIMD: a lane select with an all-ones mask picks the first operand's lane (5).
    (call $digit (i32.const 115)
      (i32x4.extract_lane 0
        (i32x4.relaxed_laneselect
          (v128.const i32x4 5 5 5 5) (v128.const i32x4 1 1 1 1) (v128.const i32x4 -1 -1 -1 -1))))
    ;; Multi-memory and memory64: 9 stored at a 64-bit address of the second memory, read back.
    (i32.store $wide (i64.const 4096) (i32.const 9))
    (call $digit (i32.const 126) (i32.load $wide (i64.const 4096)))
    ;; Extended constant expressions: the global initialised with 5 + 3.
    (call $digit (i32.const 134) (global.get $extended))
    ;; Atomics: an atomic add of 2 to 1, read back atomically.
    (i32.store (i32.const 64) (i32.const 1))
    (drop (i32.atomic.rmw.add (i32.const 64) (i32.const 2)))
    (call $digit (i32.const 144) (i32.atomic.load (i32.const 64)))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 46))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))

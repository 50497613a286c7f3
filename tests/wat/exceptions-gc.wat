;; A WASI preview 1 command using the exception-handling and GC proposals (and tail calls):
;; it throws a Wasm exception carrying 4 and catches it, builds a GC struct {3, 4} and sums
;; its fields through a tail call, then prints "caught 4 point 7" with the digits it computed.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (type $point (struct (field i32) (field i32)))
  (tag $oops (param i32))
  (data (i32.const 100) "caught ? point ?\n")

  (func $thrower (param i32)
    (throw $oops (local.get 0)))

  ;; The payload of the exception $thrower raises, or -1 if none was caught.
  (func $catch (result i32)
    (block $handler (result i32)
      (try_table (catch $oops $handler)
        (call $thrower (i32.const 4)))
      (i32.const -1)))

  (func $sum (param $p (ref $point)) (result i32)
    (i32.add (struct.get $point 0 (local.get $p)) (struct.get $point 1 (local.get $p))))

  (func $sum_tail (param $p (ref $point)) (result i32)
    (return_call $sum (local.get $p)))

  (func (export "_start")
    (i32.store8 (i32.const 107) (i32.add (i32.const 48) (call $catch)))
    (i32.store8 (i32.const 115)
      (i32.add (i32.const 48)
        (call $sum_tail (struct.new $point (i32.const 3) (i32.const 4)))))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 17))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))

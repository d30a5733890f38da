;; Adds a static claim to both tokens, whatever the input. Hand-written against rule ABI v1:
;; exports memory, alloc and rule; imports only wardstone.log.
(module
  (import "wardstone" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  ;; The output patch, at offset 1024 (113 bytes).
  (data (i32.const 1024) "{\"context\":{\"idToken\":{\"https://wardstone.dev/tier\":\"gold\"},\"accessToken\":{\"https://wardstone.dev/tier\":\"gold\"}}}")
  ;; A log message at offset 512 (28 bytes).
  (data (i32.const 512) "adding the static tier claim")
  ;; alloc(len): the input goes at 4096; grow memory until it fits.
  (func (export "alloc") (param $len i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.sub
        (i32.div_u (i32.add (i32.add (i32.const 4096) (local.get $len)) (i32.const 65535)) (i32.const 65536))
        (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (drop (memory.grow (local.get $need)))))
    (i32.const 4096))
  ;; rule(ptr, len) -> (out_ptr << 32) | out_len
  (func (export "rule") (param $ptr i32) (param $len i32) (result i64)
    (call $log (i32.const 1) (i32.const 512) (i32.const 28))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 113))))

;; Denies every login with a fixed message (e.g. during maintenance).
(module
  (memory (export "memory") 1)
  ;; 80 bytes at offset 1024.
  (data (i32.const 1024) "{\"error\":{\"kind\":\"unauthorized\",\"message\":\"Logins are closed for maintenance.\"}}")
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
  (func (export "rule") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 80))))

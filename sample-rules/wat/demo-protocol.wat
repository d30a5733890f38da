;; The demo rule (`serve --demo`): copies `context.protocol` into both tokens as the claim
;; `https://demo.wardstone.dev/protocol`, so the demo API shows `oidc-basic-profile` after a
;; login and `oauth2-refresh-token` after a refresh. Hand-written against rule ABI v1 (no
;; toolchain needed): it finds `"protocol":"` in the input and copies the string after it.
(module
  (import "wardstone" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "\"protocol\":\"")
  (data (i32.const 300) "{\"context\":{\"idToken\":{\"https://demo.wardstone.dev/protocol\":\"")
  (data (i32.const 400) "\"},\"accessToken\":{\"https://demo.wardstone.dev/protocol\":\"")
  (data (i32.const 500) "\"}}}")
  (data (i32.const 600) "no protocol in the input")
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
  ;; Copies len bytes from src to dst; returns dst + len.
  (func $copy (param $dst i32) (param $src i32) (param $len i32) (result i32)
    (memory.copy (local.get $dst) (local.get $src) (local.get $len))
    (i32.add (local.get $dst) (local.get $len)))
  ;; rule(ptr, len) -> (out_ptr << 32) | out_len; the output is built at 2048.
  (func (export "rule") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $j i32) (local $end i32) (local $start i32) (local $vlen i32) (local $out i32)
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $i (local.get $ptr))
    (block $found
      (loop $scan
        (br_if $found (i32.gt_u (i32.add (local.get $i) (i32.const 12)) (local.get $end)))
        (local.set $j (i32.const 0))
        (block $mismatch
          (loop $cmp
            (br_if $mismatch
              (i32.ne (i32.load8_u (i32.add (local.get $i) (local.get $j)))
                      (i32.load8_u (i32.add (i32.const 256) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br_if $cmp (i32.lt_u (local.get $j) (i32.const 12))))
          (local.set $start (i32.add (local.get $i) (i32.const 12)))
          (br $found))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (if (i32.eqz (local.get $start))
      (then
        (call $log (i32.const 2) (i32.const 600) (i32.const 24))
        (i32.store8 (i32.const 2048) (i32.const 123))
        (i32.store8 (i32.const 2049) (i32.const 125))
        (return (i64.or (i64.shl (i64.const 2048) (i64.const 32)) (i64.const 2)))))
    ;; The value runs to the next quote; protocol names are short and never escaped.
    (local.set $i (local.get $start))
    (loop $value
      (if (i32.and (i32.lt_u (local.get $i) (local.get $end))
                   (i32.ne (i32.load8_u (local.get $i)) (i32.const 34)))
        (then
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $value))))
    (local.set $vlen (i32.sub (local.get $i) (local.get $start)))
    (if (i32.gt_u (local.get $vlen) (i32.const 64)) (then (local.set $vlen (i32.const 64))))
    (local.set $out (call $copy (i32.const 2048) (i32.const 300) (i32.const 62)))
    (local.set $out (call $copy (local.get $out) (local.get $start) (local.get $vlen)))
    (local.set $out (call $copy (local.get $out) (i32.const 400) (i32.const 57)))
    (local.set $out (call $copy (local.get $out) (local.get $start) (local.get $vlen)))
    (local.set $out (call $copy (local.get $out) (i32.const 500) (i32.const 4)))
    (i64.or (i64.shl (i64.const 2048) (i64.const 32))
            (i64.extend_i32_u (i32.sub (local.get $out) (i32.const 2048))))))

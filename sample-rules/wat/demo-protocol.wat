;; The demo rule (`serve --demo`): puts `context.protocol` and the user's roles
;; (`user.app_metadata.roles`) into both tokens as `https://demo.wardstone.dev/protocol` and
;; `https://demo.wardstone.dev/roles`, so the demo API shows `oidc-basic-profile` after a login
;; and `oauth2-refresh-token` after a refresh. Hand-written against rule ABI v1 — no toolchain
;; needed. It does not parse JSON: it finds `"protocol":"` and copies the string after it, and
;; copies the array under the key `roles` at the top level of `app_metadata` (string-aware, so
;; brackets inside names do not confuse it); no roles → `[]`.
(module
  (import "wardstone" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 128) "\"protocol\":\"")
  (data (i32.const 160) "\"app_metadata\":")
  (data (i32.const 192) "\"roles\":[")
  (data (i32.const 224) "[]")
  (data (i32.const 256) "{\"context\":{\"idToken\":{\"https://demo.wardstone.dev/protocol\":\"")
  (data (i32.const 384) "\",\"https://demo.wardstone.dev/roles\":")
  (data (i32.const 448) "},\"accessToken\":{\"https://demo.wardstone.dev/protocol\":\"")
  (data (i32.const 576) "}}}")
  (data (i32.const 600) "no protocol in the input")
  ;; alloc(len): the input goes at 8192; grow memory until it fits.
  (func (export "alloc") (param $len i32) (result i32)
    (local $need i32)
    (local.set $need
      (i32.sub
        (i32.div_u (i32.add (i32.add (i32.const 8192) (local.get $len)) (i32.const 65535)) (i32.const 65536))
        (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (drop (memory.grow (local.get $need)))))
    (i32.const 8192))
  (func $copy (param $dst i32) (param $src i32) (param $len i32) (result i32)
    (memory.copy (local.get $dst) (local.get $src) (local.get $len))
    (i32.add (local.get $dst) (local.get $len)))
  ;; Whether the n bytes at $at equal those at $pat (and fit before $end).
  (func $matches (param $at i32) (param $pat i32) (param $n i32) (param $end i32) (result i32)
    (local $j i32)
    (if (i32.gt_u (i32.add (local.get $at) (local.get $n)) (local.get $end)) (then (return (i32.const 0))))
    (block $no
      (loop $cmp
        (br_if $no (i32.ge_u (local.get $j) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $at) (local.get $j)))
                    (i32.load8_u (i32.add (local.get $pat) (local.get $j))))
          (then (return (i32.const 0))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $cmp)))
    (i32.const 1))
  ;; The first position at or after $from where the n bytes at $pat occur, or 0.
  (func $find (param $from i32) (param $end i32) (param $pat i32) (param $n i32) (result i32)
    (loop $scan
      (if (i32.lt_u (local.get $from) (local.get $end))
        (then
          (if (call $matches (local.get $from) (local.get $pat) (local.get $n) (local.get $end))
            (then (return (local.get $from))))
          (local.set $from (i32.add (local.get $from) (i32.const 1)))
          (br $scan))))
    (i32.const 0))
  ;; Scans the JSON value starting at $at (an object or array) string-aware. With $key set,
  ;; returns the position of the '[' of `"roles":[` at depth 1, or 0; without, returns the
  ;; position just past the value's end.
  (func $scan (param $at i32) (param $end i32) (param $key i32) (result i32)
    (local $depth i32) (local $c i32) (local $in i32) (local $esc i32)
    (loop $next
      (if (i32.ge_u (local.get $at) (local.get $end)) (then (return (i32.const 0))))
      (local.set $c (i32.load8_u (local.get $at)))
      (if (local.get $in)
        (then
          (if (local.get $esc)
            (then (local.set $esc (i32.const 0)))
            (else
              (if (i32.eq (local.get $c) (i32.const 92)) (then (local.set $esc (i32.const 1))))
              (if (i32.eq (local.get $c) (i32.const 34)) (then (local.set $in (i32.const 0)))))))
        (else
          (if (i32.eq (local.get $c) (i32.const 34))
            (then
              (if (i32.and (local.get $key)
                    (i32.and (i32.eq (local.get $depth) (i32.const 1))
                             (call $matches (local.get $at) (i32.const 192) (i32.const 9) (local.get $end))))
                (then (return (i32.add (local.get $at) (i32.const 8)))))
              (local.set $in (i32.const 1))))
          (if (i32.or (i32.eq (local.get $c) (i32.const 123)) (i32.eq (local.get $c) (i32.const 91)))
            (then (local.set $depth (i32.add (local.get $depth) (i32.const 1)))))
          (if (i32.or (i32.eq (local.get $c) (i32.const 125)) (i32.eq (local.get $c) (i32.const 93)))
            (then
              (local.set $depth (i32.sub (local.get $depth) (i32.const 1)))
              (if (i32.eqz (local.get $depth))
                (then (return (select (i32.const 0) (i32.add (local.get $at) (i32.const 1)) (local.get $key)))))))))
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (br $next))
    (i32.const 0))
  ;; rule(ptr, len) -> (out_ptr << 32) | out_len; the output is built at 1024 (up to 7 KiB).
  (func (export "rule") (param $ptr i32) (param $len i32) (result i64)
    (local $end i32) (local $start i32) (local $i i32) (local $vlen i32)
    (local $roles i32) (local $rlen i32) (local $out i32)
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $start (call $find (local.get $ptr) (local.get $end) (i32.const 128) (i32.const 12)))
    (if (i32.eqz (local.get $start))
      (then
        (call $log (i32.const 2) (i32.const 600) (i32.const 24))
        (i32.store16 (i32.const 1024) (i32.const 0x7d7b))
        (return (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 2)))))
    (local.set $start (i32.add (local.get $start) (i32.const 12)))
    ;; The protocol runs to the next quote; protocol names are short and never escaped.
    (local.set $i (local.get $start))
    (loop $value
      (if (i32.and (i32.lt_u (local.get $i) (local.get $end))
                   (i32.ne (i32.load8_u (local.get $i)) (i32.const 34)))
        (then
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $value))))
    (local.set $vlen (i32.sub (local.get $i) (local.get $start)))
    (if (i32.gt_u (local.get $vlen) (i32.const 64)) (then (local.set $vlen (i32.const 64))))
    ;; The roles array, if app_metadata has one at its top level (at most 3 KiB of it).
    (local.set $roles (i32.const 224))
    (local.set $rlen (i32.const 2))
    (local.set $i (call $find (local.get $ptr) (local.get $end) (i32.const 160) (i32.const 15)))
    (if (local.get $i)
      (then
        (local.set $i (call $scan (i32.add (local.get $i) (i32.const 15)) (local.get $end) (i32.const 1)))
        (if (local.get $i)
          (then
            (local.set $out (call $scan (local.get $i) (local.get $end) (i32.const 0)))
            (if (i32.and (i32.ne (local.get $out) (i32.const 0))
                         (i32.le_u (i32.sub (local.get $out) (local.get $i)) (i32.const 3072)))
              (then
                (local.set $roles (local.get $i))
                (local.set $rlen (i32.sub (local.get $out) (local.get $i)))))))))
    (local.set $out (call $copy (i32.const 1024) (i32.const 256) (i32.const 62)))
    (local.set $out (call $copy (local.get $out) (local.get $start) (local.get $vlen)))
    (local.set $out (call $copy (local.get $out) (i32.const 384) (i32.const 37)))
    (local.set $out (call $copy (local.get $out) (local.get $roles) (local.get $rlen)))
    (local.set $out (call $copy (local.get $out) (i32.const 448) (i32.const 56)))
    (local.set $out (call $copy (local.get $out) (local.get $start) (local.get $vlen)))
    (local.set $out (call $copy (local.get $out) (i32.const 384) (i32.const 37)))
    (local.set $out (call $copy (local.get $out) (local.get $roles) (local.get $rlen)))
    (local.set $out (call $copy (local.get $out) (i32.const 576) (i32.const 3)))
    (i64.or (i64.shl (i64.const 1024) (i64.const 32))
            (i64.extend_i32_u (i32.sub (local.get $out) (i32.const 1024))))))

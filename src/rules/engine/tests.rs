//! The sandbox's memory between two instances in the same pool slot.

use std::time::Duration;

use super::{Limits, RuleEngine};

/// Where the image's data pages start (a wasm page in), and the zero pages above the image.
const IMAGE_AT: u32 = 65536;
const ZEROS_AT: u32 = 4 << 20;

/// A rule whose memory image holds "img!" at the start of every other host page of `pages`,
/// and which says whether it found that image, and zeros on as many pages above it, before
/// overwriting both. Every other page, so that each write is its own dirty region: far more
/// regions than one `PAGEMAP_SCAN` call reports (32), which is where wasmtime 48.0.8's reset
/// stopped (vendor/README.md).
fn scribbler(pages: u32) -> Vec<u8> {
    let data: String = (0..pages)
        .map(|i| format!("  (data (i32.const {}) \"img!\")\n", IMAGE_AT + i * 8192))
        .collect();
    let wat = format!(
        r#"(module
  (memory (export "memory") 128)
  (data (i32.const 1024) "{{\"context\":{{\"idToken\":{{\"fresh\":true}}}}}}")
  (data (i32.const 2048) "{{\"context\":{{\"idToken\":{{\"fresh\":false}}}}}}")
{data}
  (func (export "alloc") (param $len i32) (result i32) (i32.const 4096))
  (func (export "rule") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $at i32) (local $dirty i32)
    (loop $pages
      (local.set $at (i32.add (i32.const {IMAGE_AT}) (i32.mul (local.get $i) (i32.const 8192))))
      (if (i32.ne (i32.load (local.get $at)) (i32.const 0x21676d69))
        (then (local.set $dirty (i32.const 1))))
      (i32.store (local.get $at) (i32.const 0xdeadbeef))
      (local.set $at (i32.add (i32.const {ZEROS_AT}) (i32.mul (local.get $i) (i32.const 8192))))
      (if (i32.ne (i32.load (local.get $at)) (i32.const 0))
        (then (local.set $dirty (i32.const 1))))
      (i32.store (local.get $at) (i32.const 0xdeadbeef))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $pages (i32.lt_u (local.get $i) (i32.const {pages}))))
    (if (result i64) (local.get $dirty)
      (then (i64.or (i64.shl (i64.const 2048) (i64.const 32)) (i64.const 39)))
      (else (i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 38))))))
"#
    );
    wat::parse_str(wat).expect("valid WAT")
}

/// With 60 pages the rule's 120 dirty regions fit the 1 MiB kept resident, so the scan is
/// resumed to the end of memory and every page is copied back in place; with 300 the budget
/// runs out and the rest is handed back to the kernel. (On Linux before 6.7, without
/// `PAGEMAP_SCAN`, both check wasmtime's fallback reset instead.)
#[test]
fn an_instance_never_sees_what_the_previous_one_in_its_slot_wrote() {
    let engine = RuleEngine::new(Limits::default()).unwrap();
    for pages in [60, 300] {
        let rule = engine.compile(&scribbler(pages)).unwrap();
        for run in 0..20 {
            let execution = engine.execute(&rule, b"{}", Duration::from_secs(5));
            let output = execution.result.expect("the rule runs");
            assert_eq!(
                output["context"]["idToken"]["fresh"], true,
                "{pages} pages, run {run}: found a previous run's writes"
            );
        }
    }
}

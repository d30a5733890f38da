//! The writer: the output patch as bytes, without `core::fmt`.

use serde_json::{Number, Value};

use super::Error;

/// The JSON text of a string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    if !super::scan::has_special(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    out.push(b'"');
    let mut run = 0;
    loop {
        // Eight bytes at a time to the next byte that needs escaping (most strings have none).
        let i = super::scan::special_byte(bytes, run);
        out.extend_from_slice(bytes.get(run..i).unwrap_or_default());
        let Some(&c) = bytes.get(i) else {
            break;
        };
        let escape: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => b"",
        };
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        run = i + 1;
    }
    out.push(b'"');
}

/// `"{message} ({what} expected at byte {offset})"`, without the formatting machinery.
pub(crate) fn describe(message: &str, e: Error) -> String {
    let mut out = Vec::with_capacity(message.len() + 48);
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b" (");
    out.extend_from_slice(e.what.as_bytes());
    out.extend_from_slice(b" expected at byte ");
    write_u64(&mut out, e.at as u64);
    out.push(b')');
    String::from_utf8(out).unwrap_or_default()
}

/// The decimal digits of `n`.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// The JSON text of a number, as serde_json writes it.
pub fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        write_u64(out, u);
    } else if let Some(i) = n.as_i64() {
        out.push(b'-');
        write_u64(out, i.unsigned_abs());
    } else if let Some(f) = n.as_f64() {
        crate::float::write(out, f);
    }
}

/// The JSON text of a value (compact; object keys in the map's order).
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(out, map.iter()),
    }
}

/// The JSON text of an object from its entries.
pub fn write_map<'v>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'v String, &'v Value)>) {
    out.push(b'{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

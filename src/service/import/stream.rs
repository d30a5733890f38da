//! Users one by one from an Auth0 users file — the bulk-import JSON array or the export job's
//! NDJSON — without holding the file in memory, and with a bound on any one user's bytes.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

use crate::service::AdminError;

/// Longest line of an NDJSON file (one user).
const MAX_LINE: usize = 256 * 1024;

/// Calls `each` with every user object of the file and where it is (`file:line` or
/// `file: user #n`), streaming. Errors name the place.
pub(super) fn for_each_object(
    path: &Path,
    mut each: impl FnMut(Value, &dyn Fn() -> String) -> Result<(), AdminError>,
) -> Result<(), AdminError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| AdminError::Invalid(format!("{name}: cannot read: {e}")))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    // A JSON array (bulk-import format) or one object per line (the export job's NDJSON).
    let first = loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| AdminError::Invalid(format!("{name}: cannot read: {e}")))?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                reader.consume(i);
                break Some(b);
            }
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    match first {
        None => Ok(()),
        Some(0x1f) => Err(AdminError::Invalid(format!(
            "{name}: gzip-compressed (Auth0's export job writes .json.gz): gunzip it first"
        ))),
        Some(b'[') => {
            let since = std::rc::Rc::new(std::cell::Cell::new(0usize));
            let reader = Bounded {
                inner: reader,
                since: since.clone(),
            };
            let mut de = serde_json::Deserializer::from_reader(reader);
            let mut failure: Option<AdminError> = None;
            let seed = EachSeed {
                each: &mut each,
                name: &name,
                failure: &mut failure,
                since,
            };
            let parsed = seed.deserialize(&mut de).and_then(|()| de.end());
            if let Some(f) = failure {
                return Err(f);
            }
            parsed.map_err(|e| {
                AdminError::Invalid(format!("{name}:{}:{}: {}", e.line(), e.column(), e))
            })
        }
        Some(_) => {
            let mut line = Vec::new();
            let mut number = 0usize;
            loop {
                line.clear();
                number += 1;
                let n = (&mut reader)
                    .take(MAX_LINE as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .map_err(|e| AdminError::Invalid(format!("{name}: cannot read: {e}")))?;
                if n == 0 {
                    return Ok(());
                }
                if line.len() > MAX_LINE {
                    return Err(AdminError::Invalid(format!(
                        "{name}:{number}: a line is longer than {} KiB",
                        MAX_LINE >> 10
                    )));
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let v: Value = serde_json::from_slice(&line).map_err(|e| {
                    AdminError::Invalid(format!("{name}:{number}:{}: {e}", e.column()))
                })?;
                let at = || format!("{name}:{number}");
                each(v, &at)?;
            }
        }
    }
}

/// Visits a JSON array one element at a time, so the file is never held whole.
struct EachSeed<'a, F: FnMut(Value, &dyn Fn() -> String) -> Result<(), AdminError>> {
    each: &'a mut F,
    name: &'a str,
    failure: &'a mut Option<AdminError>,
    /// Bytes read since the last element ended (see [`Bounded`]).
    since: std::rc::Rc<std::cell::Cell<usize>>,
}

/// A reader that fails once more than [`MAX_LINE`] bytes are read without an element ending:
/// one user of a JSON array is bounded like one NDJSON line, so a giant element cannot make
/// the import hold gigabytes.
struct Bounded<R> {
    inner: R,
    since: std::rc::Rc<std::cell::Cell<usize>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.since.get() + n;
        if total > MAX_LINE + (1 << 16) {
            return Err(std::io::Error::other(format!(
                "a user is larger than {} KiB",
                MAX_LINE >> 10
            )));
        }
        self.since.set(total);
        Ok(n)
    }
}

impl<'de, F: FnMut(Value, &dyn Fn() -> String) -> Result<(), AdminError>> DeserializeSeed<'de>
    for EachSeed<'_, F>
{
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Value, &dyn Fn() -> String) -> Result<(), AdminError>> Visitor<'de>
    for EachSeed<'_, F>
{
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of users")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while let Some(v) = seq.next_element::<Value>()? {
            index += 1;
            let name = self.name;
            let at = move || format!("{name}: user #{index}");
            if let Err(e) = (self.each)(v, &at) {
                *self.failure = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
            self.since.set(0);
        }
        Ok(())
    }
}

//! The rule's own JSON reader and writer.
//!
//! `serde_json` stays the type rule authors use (`Value`, `Map`, `json!`), but its generic
//! deserializer and serializer are not what a rule runs: monomorphised for the input's dozens of
//! fields they made an SDK module ≈ 200 KB of wasm and most of its fuel. This reader walks the
//! input once, hands each field to a small decoder, and keeps the parts a rule may never touch
//! as text ([`crate::Lazy`]); the writer emits the output patch directly. Neither formats with
//! `core::fmt` nor panics, so none of that machinery is linked into a rule either.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Why a JSON text could not be read: what was expected, and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    what: &'static str,
    at: usize,
}

impl Error {
    /// What went wrong.
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The byte offset in the text.
    pub fn offset(&self) -> usize {
        self.at
    }
}

/// A decoder stopped; the reader holds why (see [`from_str`]). A unit, so the reader's
/// results stay small: they are returned on every token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop;

mod reader;
mod scan;
#[cfg(test)]
mod tests;
mod writer;

pub use reader::Reader;
pub(crate) use writer::{describe, write_u64};
pub use writer::{write_map, write_number, write_str, write_value};

/// A type the rule's reader decodes.
pub trait FromJson: Sized {
    /// Reads one value of this type.
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop>;

    /// Reads one value into `self`. Structs decode their fields in place: moving the whole
    /// input (≈ 1 KB) through return values cost more than reading it.
    fn read_into(&mut self, r: &mut Reader<'_>) -> Result<(), Stop> {
        let value = Self::from_json(r)?;
        // The old value is the default the input starts as.
        discard(std::mem::replace(self, value));
        Ok(())
    }
}

/// `s` as an owned `String`, allocated directly: `String::from` goes through `RawVec`'s
/// capacity and overflow checks (≈ 40 instructions in wasm, for each of the ≈ 50 strings of a
/// login's input).
#[inline]
pub(crate) fn owned(s: &str) -> String {
    let len = s.len();
    if len == 0 {
        return String::new();
    }
    // SAFETY: a non-zero size with alignment 1 is a valid layout (a `str` is at most
    // `isize::MAX` bytes); the block is `len` bytes from the global allocator, filled with
    // `s`'s UTF-8 bytes, which is what `from_raw_parts` needs with capacity `len`.
    unsafe {
        let layout = std::alloc::Layout::from_size_align_unchecked(len, 1);
        let ptr = std::alloc::alloc(layout);
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        std::ptr::copy_nonoverlapping(s.as_ptr(), ptr, len);
        String::from_raw_parts(ptr, len, len)
    }
}

/// `s` as an owned `String` (see [`owned`]); an unescaped one is still borrowed.
#[inline]
pub(crate) fn into_owned(s: Cow<'_, str>) -> String {
    match s {
        Cow::Borrowed(s) => owned(s),
        Cow::Owned(s) => s,
    }
}

/// Drops a value the decoder replaced, except inside the sandbox: there it is forgotten, since
/// the instance is thrown away after the run and dropping even an empty map or a `None` runs
/// its drop glue (≈ 80–260 instructions; a login's input replaces some twenty values).
#[inline(always)]
pub(crate) fn discard<T>(value: T) {
    #[cfg(target_arch = "wasm32")]
    std::mem::forget(value);
    #[cfg(not(target_arch = "wasm32"))]
    drop(value);
}

/// Decodes a whole text.
pub fn from_str<T: FromJson>(text: &str) -> Result<T, Error> {
    let mut r = Reader::new(text);
    let v = T::from_json(&mut r).and_then(|v| r.finish().map(|()| v));
    v.map_err(|Stop| r.failure)
}

/// Decodes a whole text into `into`.
pub fn read_into<T: FromJson>(text: &str, into: &mut T) -> Result<(), Error> {
    let mut r = Reader::new(text);
    into.read_into(&mut r)
        .and_then(|()| r.finish())
        .map_err(|Stop| r.failure)
}

impl FromJson for Value {
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop> {
        r.value()
    }
}

impl FromJson for Map<String, Value> {
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop> {
        let mut map = Map::new();
        r.object(|r, key| {
            let v = r.value()?;
            discard(map.insert(owned(key), v));
            Ok(())
        })?;
        Ok(map)
    }
}

impl FromJson for String {
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop> {
        r.string().map(into_owned)
    }
}

impl FromJson for bool {
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop> {
        match r.peek() {
            Some(b't') => r.literal("true").map(|()| true),
            Some(b'f') => r.literal("false").map(|()| false),
            _ => Err(r.error("true or false")),
        }
    }
}

impl FromJson for i64 {
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop> {
        let at = r.pos;
        r.peek();
        match r.number()?.as_i64() {
            Some(i) => Ok(i),
            None => Err(r.fail_at("an integer", at)),
        }
    }
}

impl<T: FromJson> FromJson for Option<T> {
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop> {
        if r.null()? {
            Ok(None)
        } else {
            T::from_json(r).map(Some)
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop> {
        let mut items = Vec::new();
        r.array(|r| {
            if items.is_empty() {
                // Eight at once: growing from four to eight copies the first four.
                items.reserve(8);
            }
            items.push(T::from_json(r)?);
            Ok(())
        })?;
        Ok(items)
    }
}

impl FromJson for BTreeMap<String, String> {
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop> {
        let mut map = BTreeMap::new();
        r.object(|r, key| {
            let v = into_owned(r.string()?);
            discard(map.insert(owned(key), v));
            Ok(())
        })?;
        Ok(map)
    }
}

/// The position of `name` among a struct's fields, computed at compile time.
#[doc(hidden)]
pub const fn index_of(names: &[&str], name: &str) -> usize {
    let mut i = 0;
    while i < names.len() {
        if const_eq(names[i], name) {
            return i;
        }
        i += 1;
    }
    usize::MAX
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut j = 0;
    while j < a.len() {
        if a[j] != b[j] {
            return false;
        }
        j += 1;
    }
    true
}

/// The bit of `name` among a struct's required fields (0 when it is not one), computed at
/// compile time: a lookup at run time cost ≈ 40 instructions per key in wasm.
#[doc(hidden)]
pub const fn required_bit(required: &[&str], name: &str) -> u32 {
    match index_of(required, name) {
        usize::MAX => 0,
        i => 1 << i,
    }
}

/// Decodes a struct's fields by name; other fields are skipped, missing ones keep their default.
macro_rules! from_json_fields {
    ($t:ty { $($name:literal => $field:ident),* $(,)? } $(required: [$($req:literal),*])?) => {
        impl $crate::json::FromJson for $t {
            fn from_json(r: &mut $crate::json::Reader<'_>) -> Result<Self, $crate::json::Stop> {
                let mut v = <$t>::default();
                v.read_into(r)?;
                Ok(v)
            }

            fn read_into(&mut self, r: &mut $crate::json::Reader<'_>) -> Result<(), $crate::json::Stop> {
                const REQUIRED: &[&str] = &[$($($req),*)?];
                // One bit per required field seen, each bit a constant.
                let mut seen = 0u32;
                let start = r.offset();
                const NAMES: &[&str] = &[$($name),*];
                // Each key as the host writes it, quotes and colon included: the host writes
                // the fields in this order, so the next one is usually recognised by
                // comparing a few words, without reading the key as a string.
                const KEYS: &[&[u8]] = &[$(concat!("\"", $name, "\":").as_bytes()),*];
                r.fields(
                    KEYS,
                    |key| match key {
                        $($name => const { $crate::json::index_of(NAMES, $name) },)*
                        _ => usize::MAX,
                    },
                    |r, index| {
                        match index {
                            $(i if i == const { $crate::json::index_of(NAMES, $name) } => {
                                seen |= const { $crate::json::required_bit(REQUIRED, $name) };
                                $crate::json::FromJson::read_into(&mut self.$field, r)?
                            })*
                            _ => {
                                r.skip()?;
                            }
                        }
                        Ok(())
                    },
                )?;
                if seen == const { (1u32 << REQUIRED.len()) - 1 } {
                    return Ok(());
                }
                match REQUIRED.iter().enumerate().find(|(i, _)| seen & (1 << i) == 0) {
                    None => Ok(()),
                    Some((_, missing)) => Err(r.missing(*missing, start)),
                }
            }
        }
    };
}
pub(crate) use from_json_fields;

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

use serde_json::{Map, Number, Value};

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

/// Nesting deeper than this is refused rather than recursed into (the rule's stack is small).
const MAX_DEPTH: u32 = 128;

/// A cursor over a JSON text.
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
    failure: Error,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader {
            text,
            pos: 0,
            depth: 0,
            failure: Error { what: "", at: 0 },
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes().get(self.pos..).unwrap_or_default()
    }

    fn error(&mut self, what: &'static str) -> Stop {
        self.fail_at(what, self.pos)
    }

    /// Where the reader is (a byte offset).
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Fails because the object that started at `at` lacks the required field `name`.
    pub fn missing(&mut self, name: &'static str, at: usize) -> Stop {
        let what = match name {
            "user" => "an object with a user",
            "context" => "an object with a context",
            "user_id" => "a user with a user_id",
            "name" => "an authentication method with a name",
            "timestamp" => "an authentication method with a timestamp",
            _ => "an object with all its required fields",
        };
        self.fail_at(what, at)
    }

    fn fail_at(&mut self, what: &'static str, at: usize) -> Stop {
        self.failure = Error { what, at };
        Stop
    }

    fn slice(&mut self, from: usize, to: usize) -> Result<&'a str, Stop> {
        // Both ends sit on ASCII bytes the reader matched, so this never fails on valid input.
        match self.text.get(from..to) {
            Some(s) => Ok(s),
            None => Err(self.fail_at("a whole character", from)),
        }
    }

    /// The next byte after whitespace, without consuming it.
    pub fn peek(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        while let Some(&c) = bytes.get(self.pos) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                return Some(c);
            }
        }
        None
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), Stop> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn literal(&mut self, word: &'static str) -> Result<(), Stop> {
        if self.rest().starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("true, false or null"))
        }
    }

    /// Fails unless only whitespace is left.
    pub fn finish(&mut self) -> Result<(), Stop> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("the end of the input")),
        }
    }

    fn enter(&mut self) -> Result<(), Stop> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("at most 128 levels of nesting"));
        }
        Ok(())
    }

    /// Reads `null` if it is next.
    pub fn null(&mut self) -> Result<bool, Stop> {
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Walks an object: `field` is called with each key and must consume its value.
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &str) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        self.expect(b'{', "an object")?;
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                if self.peek() != Some(b'"') {
                    return Err(self.error("a key"));
                }
                let key = self.string()?;
                self.expect(b':', "a colon")?;
                field(self, &key)?;
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("a comma or the end of the object")),
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// Walks an array: `item` is called at each element and must consume it.
    pub fn array(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        self.expect(b'[', "an array")?;
        self.enter()?;
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                item(self)?;
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("a comma or the end of the array")),
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// A string, borrowed from the text when it has no escapes.
    pub fn string(&mut self) -> Result<Cow<'a, str>, Stop> {
        self.expect(b'"', "a string")?;
        let bytes = self.bytes();
        let start = self.pos;
        self.pos = special_byte(bytes, self.pos);
        match bytes.get(self.pos) {
            Some(b'"') => {
                let s = self.slice(start, self.pos)?;
                self.pos += 1;
                return Ok(Cow::Borrowed(s));
            }
            Some(b'\\') => {}
            Some(_) => return Err(self.error("an escaped control character")),
            None => return Err(self.error("the end of a string")),
        }
        let mut out = String::from(self.slice(start, self.pos)?);
        loop {
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    let escape = bytes.get(self.pos + 1).copied();
                    self.pos += 2;
                    let c = match escape {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.error("a valid escape")),
                    };
                    out.push(c);
                }
                Some(&c) if c >= 0x20 => {
                    let run = self.pos;
                    while matches!(bytes.get(self.pos), Some(&c) if c >= 0x20 && c != b'"' && c != b'\\')
                    {
                        self.pos += 1;
                    }
                    out.push_str(self.slice(run, self.pos)?);
                }
                Some(_) => return Err(self.error("an escaped control character")),
                None => return Err(self.error("the end of a string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, Stop> {
        let mut n = 0;
        for _ in 0..4 {
            let d = match self.bytes().get(self.pos) {
                Some(&c @ b'0'..=b'9') => c - b'0',
                Some(&c @ b'a'..=b'f') => c - b'a' + 10,
                Some(&c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.error("four hex digits")),
            };
            n = n * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(n)
    }

    fn unicode_escape(&mut self) -> Result<char, Stop> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.rest().starts_with(b"\\u") {
                    return Err(self.error("the second half of a surrogate pair"));
                }
                self.pos += 2;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.error("the second half of a surrogate pair"));
                }
                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("a whole surrogate pair")),
            c => c,
        };
        match char::from_u32(code) {
            Some(c) => Ok(c),
            None => Err(self.error("a valid code point")),
        }
    }

    fn number(&mut self) -> Result<Number, Stop> {
        let bytes = self.bytes();
        let start = self.pos;
        let negative = bytes.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        let mut magnitude: u64 = 0;
        let mut fits = true;
        while let Some(&c @ b'0'..=b'9') = bytes.get(self.pos) {
            match magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(c - b'0')))
            {
                Some(m) => magnitude = m,
                None => fits = false,
            }
            self.pos += 1;
        }
        let int_end = self.pos;
        if int_end == int_start || (int_end - int_start > 1 && bytes.get(int_start) == Some(&b'0'))
        {
            return Err(self.error("a number"));
        }
        let (mut frac_start, mut frac_end) = (int_end, int_end);
        if bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            frac_start = self.pos;
            while matches!(bytes.get(self.pos), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
            frac_end = self.pos;
            if frac_end == frac_start {
                return Err(self.error("digits after the decimal point"));
            }
        }
        let mut exponent: i64 = 0;
        let float = frac_end > int_end || matches!(bytes.get(self.pos), Some(b'e' | b'E'));
        if matches!(bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            let negative_exponent = bytes.get(self.pos) == Some(&b'-');
            if matches!(bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            let from = self.pos;
            while let Some(&c @ b'0'..=b'9') = bytes.get(self.pos) {
                // Saturates far beyond any f64 and any input's length: such a number is 0 or
                // out of range whatever its digits.
                exponent = (exponent * 10 + i64::from(c - b'0')).min(1 << 40);
                self.pos += 1;
            }
            if self.pos == from {
                return Err(self.error("digits in the exponent"));
            }
            if negative_exponent {
                exponent = -exponent;
            }
        }
        if !float && fits {
            if !negative {
                return Ok(Number::from(magnitude));
            }
            // `-0` is a float for serde_json too.
            if magnitude != 0 && magnitude <= i64::MAX as u64 + 1 {
                return Ok(Number::from((magnitude as i64).wrapping_neg()));
            }
        }
        // Like serde_json: an integer too large for 64 bits becomes the nearest float.
        let mut digits = Vec::with_capacity(frac_end - int_start);
        for range in [int_start..int_end, frac_start..frac_end] {
            digits.extend_from_slice(bytes.get(range).unwrap_or_default());
        }
        let mut e10 = exponent - (frac_end - frac_start) as i64;
        let leading = digits.iter().take_while(|&&d| d == b'0').count();
        digits.drain(..leading);
        while digits.last() == Some(&b'0') {
            digits.pop();
            e10 += 1;
        }
        // Far outside f64's range either way; parse decides 0 or out of range.
        let e10 = e10.clamp(-(1 << 30), 1 << 30) as i32;
        match crate::float::parse(&digits, e10)
            .map(|f| if negative { -f } else { f })
            .and_then(Number::from_f64)
        {
            Some(n) => Ok(n),
            None => Err(self.fail_at("a number within the range of a double", start)),
        }
    }

    /// Any value, decoded into a [`Value`].
    pub fn value(&mut self) -> Result<Value, Stop> {
        match self.peek() {
            Some(b'{') => {
                let mut map = Map::new();
                self.object(|r, key| {
                    let v = r.value()?;
                    map.insert(key.to_owned(), v);
                    Ok(())
                })?;
                Ok(Value::Object(map))
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.array(|r| {
                    items.push(r.value()?);
                    Ok(())
                })?;
                Ok(Value::Array(items))
            }
            Some(b'"') => Ok(Value::String(self.string()?.into_owned())),
            Some(b't') => self.literal("true").map(|()| Value::Bool(true)),
            Some(b'f') => self.literal("false").map(|()| Value::Bool(false)),
            Some(b'n') => self.literal("null").map(|()| Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            Some(_) => Err(self.error("a value")),
            None => Err(self.error("a value, not the end of the input")),
        }
    }

    /// Skips one value and returns its text. Strings and brackets are matched, but the insides
    /// are checked only when the text is decoded (which [`crate::Lazy`] does on first use).
    pub fn skip(&mut self) -> Result<&'a str, Stop> {
        let bytes = self.bytes();
        let start = match self.peek() {
            Some(_) => self.pos,
            None => return Err(self.error("a value, not the end of the input")),
        };
        let mut depth = 0u32;
        loop {
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    self.skip_string_body()?;
                }
                Some(b'{' | b'[') => {
                    depth += 1;
                    self.pos += 1;
                }
                Some(b'}' | b']') if depth > 0 => {
                    depth -= 1;
                    self.pos += 1;
                }
                Some(b'}' | b']' | b',' | b':' | b' ' | b'\n' | b'\r' | b'\t') | None
                    if depth == 0 =>
                {
                    break;
                }
                Some(_) => self.pos += 1,
                None => return Err(self.error("the end of an object or array")),
            }
            if depth == 0 && matches!(bytes.get(start), Some(b'"' | b'{' | b'[')) {
                break;
            }
        }
        if self.pos == start {
            return Err(self.error("a value"));
        }
        self.slice(start, self.pos)
    }

    /// Moves past the closing quote of a string whose opening quote was consumed.
    fn skip_string_body(&mut self) -> Result<(), Stop> {
        let bytes = self.bytes();
        loop {
            self.pos = special_byte(bytes, self.pos);
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => self.pos += 2,
                Some(_) => self.pos += 1,
                None => return Err(self.error("the end of a string")),
            }
        }
    }
}

/// The position of the first `"`, `\\` or control character at or after `from` (or the
/// length). Eight bytes at a time: strings are most of a rule's input.
fn special_byte(bytes: &[u8], mut from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(from..from + 8) {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let found = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let found = found & HIGH;
        if found != 0 {
            // Borrows only run upwards, so the lowest flagged byte is a real match.
            return from + (found.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while let Some(&c) = bytes.get(from) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        from += 1;
    }
    from
}

/// A type the rule's reader decodes.
pub trait FromJson: Sized {
    /// Reads one value of this type.
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop>;

    /// Reads one value into `self`. Structs decode their fields in place: moving the whole
    /// input (≈ 1 KB) through return values cost more than reading it.
    fn read_into(&mut self, r: &mut Reader<'_>) -> Result<(), Stop> {
        *self = Self::from_json(r)?;
        Ok(())
    }
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
            map.insert(key.to_owned(), v);
            Ok(())
        })?;
        Ok(map)
    }
}

impl FromJson for String {
    fn from_json(r: &mut Reader<'_>) -> Result<Self, Stop> {
        r.string().map(Cow::into_owned)
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
            let v = r.string()?.into_owned();
            map.insert(key.to_owned(), v);
            Ok(())
        })?;
        Ok(map)
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
                // One bit per required field seen (the position lookups fold to constants).
                let mut seen = 0u32;
                let start = r.offset();
                r.object(|r, key| {
                    match key {
                        $($name => {
                            if let Some(i) = REQUIRED.iter().position(|q| *q == $name) {
                                seen |= 1 << i;
                            }
                            $crate::json::FromJson::read_into(&mut self.$field, r)?
                        })*
                        _ => {
                            r.skip()?;
                        }
                    }
                    Ok(())
                })?;
                match REQUIRED.iter().enumerate().find(|(i, _)| seen & (1 << i) == 0) {
                    None => Ok(()),
                    Some((_, missing)) => Err(r.missing(*missing, start)),
                }
            }
        }
    };
}
pub(crate) use from_json_fields;

/// The JSON text of a string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let escape: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(run..i).unwrap_or_default());
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        run = i + 1;
    }
    out.extend_from_slice(bytes.get(run..).unwrap_or_default());
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(text: &str) -> String {
        let v: Value = from_str(text).unwrap();
        let mut out = Vec::new();
        write_value(&mut out, &v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_read_and_write_as_serde_json_does() {
        for text in [
            r#"{"a":[1,-2,3.5,1e300,-0.0,18446744073709551615,-9223372036854775808],"b":{"c":null,"d":true,"e":false}}"#,
            r#""\u00e9\ud83d\ude00 \" \\ \/ \b\f\n\r\t \u0001""#,
            r#"[[],{},"",0,123456789012345678901234567890]"#,
        ] {
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(from_str::<Value>(text).unwrap(), expected, "{text}");
            assert_eq!(
                round_trip(text),
                serde_json::to_string(&expected).unwrap(),
                "{text}"
            );
        }
        assert_eq!(
            from_str::<Value>(" { \"k\" : [ 1 , 2 ] } ").unwrap(),
            json!({"k": [1, 2]})
        );
    }

    #[test]
    fn bad_text_is_an_error_not_a_panic() {
        for text in [
            "",
            "{",
            "[1,",
            "{\"a\"}",
            "{\"a\":}",
            "\"abc",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "01",
            "1.",
            "1e",
            "-",
            "tru",
            "nul",
            "[1 2]",
            "{\"a\":1,}",
            "\"a\u{1}b\"",
            "1 2",
            "\"\\u12\"",
        ] {
            assert!(from_str::<Value>(text).is_err(), "{text:?} was accepted");
        }
        // An exponent larger than any cap still counts against the digits before it.
        let text = format!("0.{}1e{}", "0".repeat(2000), 2001);
        assert_eq!(from_str::<Value>(&text).unwrap(), serde_json::json!(1.0));
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert_eq!(
            from_str::<Value>(&deep).unwrap_err().what(),
            "at most 128 levels of nesting"
        );
    }

    #[test]
    fn skipping_returns_the_text_of_one_value() {
        let text = r#"{"a":{"x":"}]\"","y":[1,{"z":2}]},"b":12.5e3 ,"c":"s","d":true}"#;
        let mut seen = Vec::new();
        from_str_with(text, |r, key| {
            seen.push((key.to_owned(), r.skip()?.to_owned()));
            Ok(())
        });
        assert_eq!(
            seen,
            [
                ("a".into(), r#"{"x":"}]\"","y":[1,{"z":2}]}"#.into()),
                ("b".into(), "12.5e3".into()),
                ("c".into(), r#""s""#.into()),
                ("d".into(), "true".into()),
            ]
        );
    }

    fn from_str_with(text: &str, f: impl FnMut(&mut Reader<'_>, &str) -> Result<(), Stop>) {
        let mut r = Reader::new(text);
        r.object(f).unwrap();
        r.finish().unwrap();
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        for s in ["plain", "q\"b\\s/", "\n\r\t\u{8}\u{c}\u{1}\u{1f}", "é😀"] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
    }
}

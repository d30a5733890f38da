//! The cursor: one pass over the text, no allocation for what a decoder skips.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::scan::{has_prefix, nested_end, special_byte, string_end};
use super::{Error, Stop};

/// Nesting deeper than this is refused rather than recursed into (the rule's stack is small).
const MAX_DEPTH: u32 = 128;

/// A cursor over a JSON text.
pub struct Reader<'a> {
    text: &'a str,
    pub(super) pos: usize,
    depth: u32,
    pub(super) failure: Error,
    /// Keys of known fields read the slow way (tests check the fast path is taken).
    #[cfg(test)]
    pub(crate) slow_keys: u32,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader {
            text,
            pos: 0,
            depth: 0,
            failure: Error { what: "", at: 0 },
            #[cfg(test)]
            slow_keys: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes().get(self.pos..).unwrap_or_default()
    }

    pub(super) fn error(&mut self, what: &'static str) -> Stop {
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

    pub(super) fn fail_at(&mut self, what: &'static str, at: usize) -> Stop {
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
    #[inline(always)]
    pub fn peek(&mut self) -> Option<u8> {
        // The host writes compact JSON: the next byte is almost always the one wanted.
        match self.bytes().get(self.pos) {
            Some(&c) if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') => Some(c),
            _ => self.peek_past_whitespace(),
        }
    }

    #[inline(never)]
    fn peek_past_whitespace(&mut self) -> Option<u8> {
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

    pub(super) fn literal(&mut self, word: &'static str) -> Result<(), Stop> {
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
        self.members(|r| {
            let key = r.key()?;
            field(r, &key)
        })
    }

    /// Walks an object whose expected keys are `keys` (each as written: `"name":`), in the
    /// order a writer emits them. `field` is called with the index of each key in `keys`
    /// (`usize::MAX` for another key) and must consume its value. The key after the last
    /// one recognised is tried first by comparing words; any other key (reordered, escaped,
    /// after whitespace, unknown) is read as a string and looked up with `lookup`.
    pub fn fields(
        &mut self,
        keys: &[&[u8]],
        lookup: impl Fn(&str) -> usize,
        mut field: impl FnMut(&mut Self, usize) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        let mut next = 0;
        self.members(|r| {
            let index = match keys.get(next) {
                Some(key) if has_prefix(r.rest(), key) => {
                    r.pos += key.len();
                    next
                }
                _ => {
                    let index = lookup(&r.key()?);
                    #[cfg(test)]
                    if index != usize::MAX {
                        r.slow_keys += 1;
                    }
                    index
                }
            };
            if index != usize::MAX {
                next = index + 1;
            }
            field(r, index)
        })
    }

    /// Walks an array: `item` is called at each element and must consume it.
    pub fn array(&mut self, item: impl FnMut(&mut Self) -> Result<(), Stop>) -> Result<(), Stop> {
        self.sequence(
            b'[',
            b']',
            "an array",
            "a comma or the end of the array",
            item,
        )
    }

    /// An object's members: `member` consumes one, key included.
    #[inline(always)]
    fn members(&mut self, member: impl FnMut(&mut Self) -> Result<(), Stop>) -> Result<(), Stop> {
        self.sequence(
            b'{',
            b'}',
            "an object",
            "a comma or the end of the object",
            member,
        )
    }

    /// `"key":`, the key unescaped.
    #[inline(always)]
    fn key(&mut self) -> Result<Cow<'a, str>, Stop> {
        if self.peek() != Some(b'"') {
            return Err(self.error("a key"));
        }
        let key = self.string()?;
        self.expect(b':', "a colon")?;
        Ok(key)
    }

    /// `open`, then `member` for each member (it consumes one), separated by commas, then
    /// `close`.
    #[inline(always)]
    fn sequence(
        &mut self,
        open: u8,
        close: u8,
        what: &'static str,
        what_next: &'static str,
        mut member: impl FnMut(&mut Self) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        self.expect(open, what)?;
        self.enter()?;
        if self.peek() == Some(close) {
            self.pos += 1;
        } else {
            loop {
                member(self)?;
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(c) if c == close => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error(what_next)),
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// A string, borrowed from the text when it has no escapes.
    #[inline]
    pub fn string(&mut self) -> Result<Cow<'a, str>, Stop> {
        // Inlined at each caller: keys and most values are compact and escape-free.
        let bytes = self.bytes();
        if bytes.get(self.pos) == Some(&b'"') {
            let start = self.pos + 1;
            let end = special_byte(bytes, start);
            if bytes.get(end) == Some(&b'"') {
                // SAFETY: `start` follows a quote and `end` is one, both inside the text:
                // ASCII bytes, so both are character boundaries (the checks `get` makes cost
                // ≈ 20 instructions per string in wasm, a hundred strings per input).
                let s = unsafe { self.text.get_unchecked(start..end) };
                self.pos = end + 1;
                return Ok(Cow::Borrowed(s));
            }
        }
        self.any_string()
    }

    #[inline(never)]
    fn any_string(&mut self) -> Result<Cow<'a, str>, Stop> {
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

    pub(super) fn number(&mut self) -> Result<Number, Stop> {
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
                    super::discard(map.insert(super::owned(key), v));
                    Ok(())
                })?;
                Ok(Value::Object(map))
            }
            Some(b'[') => {
                let mut items = Vec::new();
                self.array(|r| {
                    if items.is_empty() {
                        items.reserve(8);
                    }
                    items.push(r.value()?);
                    Ok(())
                })?;
                Ok(Value::Array(items))
            }
            Some(b'"') => Ok(Value::String(super::into_owned(self.string()?))),
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
        // Local cursors, not `self.pos`: this loop is most of what a rule spends on the
        // parts of its input it never reads.
        let end = match bytes.get(start) {
            Some(b'"') => string_end(bytes, start + 1),
            // A login's input holds half a dozen empty objects Auth0's shape has.
            Some(b'{') if bytes.get(start + 1) == Some(&b'}') => Ok(start + 2),
            Some(b'{' | b'[') => nested_end(bytes, start),
            _ => Ok(scalar_end(bytes, start)),
        };
        match end {
            Ok(end) if end > start => {
                self.pos = end;
                self.slice(start, end)
            }
            Ok(_) => Err(self.error("a value")),
            Err((what, at)) => Err(self.fail_at(what, at)),
        }
    }
}

/// The end of a number or literal: the next delimiter, whitespace, or the start of another
/// value (which the caller then refuses where it stands).
fn scalar_end(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(&c) = bytes.get(pos) {
        if matches!(
            c,
            b'}' | b']' | b',' | b':' | b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'{' | b'['
        ) {
            break;
        }
        pos += 1;
    }
    pos
}

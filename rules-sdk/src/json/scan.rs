//! Finding the next byte a reader or writer must look at. Strings are most of a rule's input,
//! and skipping the parts a rule never reads was a quarter of its fuel, so these scan many
//! bytes per step: sixteen with wasm SIMD inside the sandbox (one fuel unit per instruction,
//! whatever its width), eight (SWAR) elsewhere and for the last bytes of the text.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` that is zero. Borrows only run upwards, so the lowest
/// flagged byte is a real zero (a higher one may be a false hit; callers take the lowest).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

#[inline(always)]
fn word(bytes: &[u8], from: usize) -> Option<u64> {
    let chunk = bytes.get(from..from + 8)?;
    Some(u64::from_le_bytes(<[u8; 8]>::try_from(chunk).ok()?))
}

/// The position of the first `"`, `\\` or control character at or after `from` (or the
/// length): where a string ends or needs unescaping.
#[inline]
pub(super) fn special_byte(bytes: &[u8], from: usize) -> usize {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let from = match simd::special(bytes, from) {
        Ok(at) => return at,
        Err(tail) => tail,
    };
    special_byte_words(bytes, from)
}

fn special_byte_words(bytes: &[u8], mut from: usize) -> usize {
    while let Some(x) = word(bytes, from) {
        let found = zero_bytes(x ^ (ONES * u64::from(b'"')))
            | zero_bytes(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if found != 0 {
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

/// Whether `bytes` holds a `"`, `\\` or control character: a word at a time, the last word
/// overlapping the one before it (a string shorter than a word is read as two overlapping
/// halves), so a short string costs a few instructions instead of a loop over its bytes.
#[inline]
pub(super) fn has_special(bytes: &[u8]) -> bool {
    // Any flag means a real match somewhere (a false one only sits above a real one).
    let found = |x: u64| {
        zero_bytes(x ^ (ONES * u64::from(b'"')))
            | zero_bytes(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            != 0
    };
    let n = bytes.len();
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if found(word(bytes, at).unwrap_or_default()) {
                return true;
            }
            at += 8;
        }
        found(word(bytes, n - 8).unwrap_or_default())
    } else if n >= 4 {
        let half = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|c| <[u8; 4]>::try_from(c).ok())
                .map_or(0, |c| u64::from(u32::from_le_bytes(c)))
        };
        found(half(0) | (half(n - 4) << 32))
    } else {
        bytes.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20)
    }
}

/// Whether `text` starts with `prefix`, a word at a time: wasm's `memcmp` goes byte by byte
/// (≈ 20 instructions a byte). From four bytes up the last word overlaps the one before it
/// instead of being masked; shorter prefixes are compared as slices.
#[inline]
pub(super) fn has_prefix(text: &[u8], prefix: &[u8]) -> bool {
    let n = prefix.len();
    if text.len() < n {
        return false;
    }
    // SAFETY (both helpers): every caller below reads at `at` with `at + width <= n`, and both
    // slices hold at least `n` bytes (checked above); reads are unaligned. Unchecked because
    // this runs for every key of the input and the bounds checks were half its instructions.
    let w64 = |b: &[u8], at: usize| unsafe { b.as_ptr().add(at).cast::<u64>().read_unaligned() };
    let w32 = |b: &[u8], at: usize| unsafe { b.as_ptr().add(at).cast::<u32>().read_unaligned() };
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if w64(text, at) != w64(prefix, at) {
                return false;
            }
            at += 8;
        }
        w64(text, n - 8) == w64(prefix, n - 8)
    } else if n >= 4 {
        w32(text, 0) == w32(prefix, 0) && w32(text, n - 4) == w32(prefix, n - 4)
    } else {
        text.get(..n) == Some(prefix)
    }
}

/// Just past the bracket that closes the one at `pos` (an object's or array's text is
/// matched, not checked: [`crate::Lazy`] checks it when a rule reads it).
#[inline]
pub(super) fn nested_end(bytes: &[u8], pos: usize) -> Result<usize, (&'static str, usize)> {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return block_end(bytes, pos);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    stepwise_end(bytes, pos)
}

/// From string to string: each string's body eight bytes at a time, the bytes between them
/// one at a time. Without SIMD this is cheaper than [`block_end`], whose classification of a
/// block then takes some eighty instructions.
#[cfg_attr(
    all(target_arch = "wasm32", target_feature = "simd128"),
    allow(dead_code)
)]
fn stepwise_end(bytes: &[u8], mut pos: usize) -> Result<usize, (&'static str, usize)> {
    let mut depth = 0u32;
    loop {
        let Some(&c) = bytes.get(pos) else {
            return Err(("the end of an object or array", pos));
        };
        pos += 1;
        match c {
            b'"' => pos = string_end(bytes, pos)?,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(pos);
                }
            }
            _ => {}
        }
    }
}

/// Just past the closing quote of a string whose body starts at `pos`.
pub(super) fn string_end(bytes: &[u8], mut pos: usize) -> Result<usize, (&'static str, usize)> {
    loop {
        pos = special_byte(bytes, pos);
        match bytes.get(pos) {
            Some(b'"') => return Ok(pos + 1),
            Some(b'\\') => pos += 2,
            Some(_) => pos += 1,
            None => return Err(("the end of a string", bytes.len())),
        }
    }
}

/// Thirty-two bytes per step whatever they hold: each byte's kind as one bit of a mask, and the
/// bytes inside strings told apart with a prefix XOR over the quotes (as simdjson does). A
/// block with a backslash goes byte by byte: escapes are rare in a login's input.
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
fn block_end(bytes: &[u8], mut pos: usize) -> Result<usize, (&'static str, usize)> {
    let mut state = State {
        depth: 0,
        in_string: false,
    };
    // Two 16-byte blocks per step: one loop test and one branch for 32 bytes.
    while let Some(block) = bytes.get(pos..pos + 32) {
        let (low, high) = block.split_at(16);
        let (low, high) = (classify(low), classify(high));
        let kinds = Kinds {
            quote: low.quote | high.quote << 16,
            backslash: low.backslash | high.backslash << 16,
            open: low.open | high.open << 16,
            close: low.close | high.close << 16,
        };
        if kinds.backslash != 0 {
            let end_of_block = pos + 32;
            if let Some(end) = state.bytewise(bytes, &mut pos, end_of_block) {
                return Ok(end);
            }
            continue;
        }
        if kinds.open | kinds.close == 0 {
            // No bracket: only whether the block ends inside a string matters.
            state.in_string ^= kinds.quote.count_ones() & 1 == 1;
            pos += 32;
            continue;
        }
        let inside = if kinds.quote == 0 {
            if state.in_string { u32::MAX } else { 0 }
        } else {
            // Bit i set when byte i is an opening quote or inside a string.
            let mut m = kinds.quote;
            m ^= m << 1;
            m ^= m << 2;
            m ^= m << 4;
            m ^= m << 8;
            m ^= m << 16;
            if state.in_string {
                m = !m;
            }
            state.in_string = m & 1 << 31 != 0;
            m
        };
        let open = kinds.open & !inside;
        let close = kinds.close & !inside;
        let closes = close.count_ones();
        if closes < state.depth {
            // Fewer closing brackets than open ones before the block: it cannot end here.
            state.depth = state.depth + open.count_ones() - closes;
            pos += 32;
            continue;
        }
        let mut brackets = open | close;
        while brackets != 0 {
            let bit = brackets & brackets.wrapping_neg();
            if open & bit != 0 {
                state.depth += 1;
            } else {
                state.depth -= 1;
                if state.depth == 0 {
                    return Ok(pos + bit.trailing_zeros() as usize + 1);
                }
            }
            brackets ^= bit;
        }
        pos += 32;
    }
    match state.bytewise(bytes, &mut pos, bytes.len()) {
        Some(end) => Ok(end),
        None if state.in_string => Err(("the end of a string", bytes.len())),
        None => Err(("the end of an object or array", bytes.len())),
    }
}

#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
struct State {
    depth: u32,
    in_string: bool,
}

#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
impl State {
    /// Byte by byte until `end` (or one past it, after an escape): `Some` just past the
    /// closing bracket if it is among them.
    fn bytewise(&mut self, bytes: &[u8], pos: &mut usize, end: usize) -> Option<usize> {
        while *pos < end {
            let c = *bytes.get(*pos)?;
            *pos += 1;
            if self.in_string {
                match c {
                    b'"' => self.in_string = false,
                    b'\\' => *pos += 1,
                    _ => {}
                }
            } else {
                match c {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            return Some(*pos);
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }
}

/// One bit per byte of a block (bit i for byte i): sixteen from [`classify`], thirty-two
/// in [`block_end`].
#[cfg(any(test, all(target_arch = "wasm32", target_feature = "simd128")))]
#[derive(Debug, PartialEq, Eq)]
struct Kinds {
    quote: u32,
    backslash: u32,
    open: u32,
    close: u32,
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn classify(block: &[u8]) -> Kinds {
    simd::classify(block)
}

/// Without SIMD (the native tests): eight bytes at a time, each byte tested exactly (no
/// borrow between bytes), then the bytes' high bits gathered into eight bits by a
/// multiplication.
#[cfg(all(test, not(all(target_arch = "wasm32", target_feature = "simd128"))))]
#[inline(always)]
fn classify(block: &[u8]) -> Kinds {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    fn zero(x: u64) -> u64 {
        !(((x & LOW).wrapping_add(LOW)) | x) & HIGH
    }
    fn bits(m: u64) -> u32 {
        ((m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
    }
    let mut k = Kinds {
        quote: 0,
        backslash: 0,
        open: 0,
        close: 0,
    };
    for half in 0..2 {
        let x = word(block, half * 8).unwrap_or_default();
        let folded = x | (ONES * 0x20);
        let shift = half * 8;
        k.quote |= bits(zero(x ^ (ONES * u64::from(b'"')))) << shift;
        k.backslash |= bits(zero(x ^ (ONES * u64::from(b'\\')))) << shift;
        k.open |= bits(zero(folded ^ (ONES * u64::from(b'{')))) << shift;
        k.close |= bits(zero(folded ^ (ONES * u64::from(b'}')))) << shift;
    }
    k
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::{i8x16_bitmask, i8x16_eq, u8x16_lt, u8x16_splat, v128, v128_or};

    /// Sixteen bytes at a time while sixteen are left: `Ok` with the first flagged byte, or
    /// `Err` with where the last (fewer than sixteen) bytes start.
    #[inline(always)]
    fn blocks(bytes: &[u8], mut from: usize, flag: impl Fn(v128) -> v128) -> Result<usize, usize> {
        while let Some(block) = bytes.get(from..from + 16) {
            // SAFETY: `block` is sixteen readable bytes; the read is unaligned.
            let v = unsafe { core::ptr::read_unaligned(block.as_ptr().cast::<v128>()) };
            let bits = i8x16_bitmask(flag(v));
            if bits != 0 {
                return Ok(from + bits.trailing_zeros() as usize);
            }
            from += 16;
        }
        Err(from)
    }

    #[inline(always)]
    pub(super) fn special(bytes: &[u8], from: usize) -> Result<usize, usize> {
        blocks(bytes, from, |v| {
            v128_or(
                v128_or(
                    i8x16_eq(v, u8x16_splat(b'"')),
                    i8x16_eq(v, u8x16_splat(b'\\')),
                ),
                u8x16_lt(v, u8x16_splat(0x20)),
            )
        })
    }

    #[inline(always)]
    pub(super) fn classify(block: &[u8]) -> super::Kinds {
        // SAFETY: the caller passes sixteen bytes; the read is unaligned.
        let v = unsafe { core::ptr::read_unaligned(block.as_ptr().cast::<v128>()) };
        // `[` and `]` are `{` and `}` without the 0x20 bit.
        let folded = v128_or(v, u8x16_splat(0x20));
        let mask = |m: v128| u32::from(i8x16_bitmask(m));
        super::Kinds {
            quote: mask(i8x16_eq(v, u8x16_splat(b'"'))),
            backslash: mask(i8x16_eq(v, u8x16_splat(b'\\'))),
            open: mask(i8x16_eq(folded, u8x16_splat(b'{'))),
            close: mask(i8x16_eq(folded, u8x16_splat(b'}'))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_to_escape_is_found_at_every_length_and_position() {
        for n in 0..40 {
            let clean: Vec<u8> = "é😀\u{7f}abc".bytes().cycle().take(n).collect();
            assert!(!has_special(&clean), "{n}");
            for at in 0..n {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut bytes = clean.clone();
                    bytes[at] = special;
                    assert!(has_special(&bytes), "{n} {at} {special}");
                }
            }
        }
    }

    #[test]
    fn a_prefix_is_found_by_words_at_every_length() {
        let text = b"\"connectionStrategy\":\"auth0\",\"x\":1";
        for n in 0..=text.len() {
            assert!(has_prefix(text, &text[..n]), "{n}");
            for at in 0..n {
                let mut other = text[..n].to_vec();
                other[at] ^= 0x20;
                assert!(!has_prefix(text, &other), "{n} {at}");
            }
        }
        assert!(!has_prefix(b"\"ip\"", b"\"ip\":"));
    }

    /// The byte-by-byte skip the block skip must agree with.
    fn reference(bytes: &[u8], mut pos: usize) -> Option<usize> {
        let mut state = State {
            depth: 0,
            in_string: false,
        };
        state.bytewise(bytes, &mut pos, bytes.len())
    }

    #[test]
    fn the_block_skip_agrees_with_a_byte_by_byte_one_wherever_blocks_fall() {
        let values = [
            r#"{"a":"}","b":["]","[",{"c":"{\"}"}],"d":"\\"}"#,
            r#"[1,[2,[3,{"x":"]]]]"}]],"yy\"y]"]"#,
            r#"{"query":{"response_type":"code","scope":"openid profile email"},"ip":"203.0.113.42"}"#,
            r#"{"k":"\u005d\"]","l":[[],[[]],{}],"m":"é😀]"}"#,
            r#"{"long":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{[","n":{}}"#,
            "{}",
            "[]",
        ];
        for value in values {
            // Every offset of the value against the 32-byte steps, and text after it.
            for pad in 0..40 {
                for after in ["", ",\"x\":[1]}", "]]]]]]]]]]]]]]]]]]"] {
                    let text = format!("{}{value}{after}", " ".repeat(pad));
                    let expected = reference(text.as_bytes(), pad);
                    assert_eq!(expected, Some(pad + value.len()), "{text}");
                    assert_eq!(block_end(text.as_bytes(), pad).ok(), expected, "{text}");
                    assert_eq!(stepwise_end(text.as_bytes(), pad).ok(), expected, "{text}");
                }
            }
        }
        for (unclosed, what) in [
            (r#"{"a":["#, "the end of an object or array"),
            (r#"{"a":"}]}"#, "the end of a string"),
            (r#"[["\"]"]"#, "the end of an object or array"),
            (
                "{\"abcdefghijklmnopqrstuvwxyz\":1",
                "the end of an object or array",
            ),
        ] {
            let found = block_end(unclosed.as_bytes(), 0);
            assert_eq!(found, Err((what, unclosed.len())), "{unclosed}");
            assert!(stepwise_end(unclosed.as_bytes(), 0).is_err(), "{unclosed}");
        }
    }

    #[test]
    fn classifying_a_block_flags_exactly_its_quotes_backslashes_and_brackets() {
        let mut block = [0u8; 16];
        for seed in 0u32..4000 {
            let mut x = seed.wrapping_mul(2_654_435_761);
            for b in block.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let table = b"\"\\{}[]az0:,\x7f\x80\xff\x00 Z";
                *b = table[x as usize % table.len()];
            }
            let mut want = Kinds {
                quote: 0,
                backslash: 0,
                open: 0,
                close: 0,
            };
            for (i, &b) in block.iter().enumerate() {
                let bit = 1 << i;
                match b {
                    b'"' => want.quote |= bit,
                    b'\\' => want.backslash |= bit,
                    b'{' | b'[' => want.open |= bit,
                    b'}' | b']' => want.close |= bit,
                    _ => {}
                }
            }
            assert_eq!(classify(&block), want, "{block:?}");
        }
    }
}

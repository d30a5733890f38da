//! Decimal text ↔ `f64`, exact, without tables.
//!
//! `core`'s parser and the shortest-digits printers carry ≈ 38 KB of power tables and code,
//! which was a third of an SDK rule's module for numbers a login's input almost never holds.
//! Here the common case (at most 15–19 digits, a small exponent) is one exact multiplication
//! or division (Clinger's fast path), and everything else is settled by comparing big
//! integers: slow, but exact, and small.

use std::cmp::Ordering;

/// A little-endian big unsigned integer.
#[derive(Clone)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(n: u64) -> Big {
        let mut b = Big(vec![n as u32, (n >> 32) as u32]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = u64::from(a);
        for limb in &mut self.0 {
            if carry == 0 {
                return;
            }
            let v = u64::from(*limb) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow5(&mut self, mut e: u32) {
        while e >= 13 {
            self.mul_small(1_220_703_125); // 5^13
            e -= 13;
        }
        self.mul_small(5u32.pow(e));
    }

    fn mul_pow2(&mut self, e: u32) {
        let (words, bits) = ((e / 32) as usize, e % 32);
        if bits > 0 {
            let mut carry = 0u32;
            for limb in &mut self.0 {
                let v = (*limb << bits) | carry;
                carry = *limb >> (32 - bits);
                *limb = v;
            }
            if carry > 0 {
                self.0.push(carry);
            }
        }
        if words > 0 && !self.0.is_empty() {
            self.0.splice(0..0, std::iter::repeat_n(0, words));
        }
    }

    /// Divides by `d` in place and returns the remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for limb in self.0.iter_mut().rev() {
            let v = (rem << 32) | u64::from(*limb);
            *limb = (v / u64::from(d)) as u32;
            rem = v % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// The decimal digits (ASCII), most significant first; empty for zero.
    fn digits(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while !self.0.is_empty() {
            let mut chunk = self.div_small(1_000_000_000);
            for _ in 0..9 {
                out.push(b'0' + (chunk % 10) as u8);
                chunk /= 10;
            }
        }
        while out.last() == Some(&b'0') {
            out.pop();
        }
        out.reverse();
        out
    }
}

/// `x = m × 2^k` exactly, for a finite positive `x` (subnormals included).
fn decompose(x: f64) -> (u64, i32) {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), exp - 1075)
    }
}

/// Compares `digits × 10^e10` with `a × 2^k`.
fn compare(digits: &[u8], e10: i32, a: u64, k: i32) -> Ordering {
    let mut lhs = Big(Vec::new());
    for &d in digits {
        lhs.mul_small(10);
        lhs.add_small(u32::from(d - b'0'));
        lhs.trim();
    }
    let mut rhs = Big::from_u64(a);
    if e10 >= 0 {
        lhs.mul_pow5(e10 as u32);
        lhs.mul_pow2(e10 as u32);
    } else {
        rhs.mul_pow5(e10.unsigned_abs());
        rhs.mul_pow2(e10.unsigned_abs());
    }
    if k >= 0 {
        rhs.mul_pow2(k as u32);
    } else {
        lhs.mul_pow2(k.unsigned_abs());
    }
    lhs.cmp(&rhs)
}

/// Compares `digits × 10^e10` with the point halfway between the positive floats `lo < hi`.
fn compare_halfway(digits: &[u8], e10: i32, lo: f64, hi: f64) -> Ordering {
    let ((m_lo, k_lo), (m_hi, k_hi)) = (decompose(lo), decompose(hi));
    let k = k_lo.min(k_hi);
    // Neighbouring floats differ by at most one binade: the shifts are 0 or 1.
    let sum = (m_lo << (k_lo - k)) + (m_hi << (k_hi - k));
    compare(digits, e10, sum, k - 1)
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The `f64` nearest to `digits × 10^e10` (ties to even), where `digits` are ASCII decimal
/// digits without leading zeros. `None` when it is beyond `f64::MAX`.
pub(crate) fn parse(digits: &[u8], e10: i32) -> Option<f64> {
    if digits.is_empty() {
        return Some(0.0);
    }
    // A halfway point between two doubles has at most 767 significant digits: 780 digits and a
    // sticky 1 for anything non-zero after them round exactly as the whole number does.
    const KEPT: usize = 780;
    let sticky;
    let (digits, e10) = if digits.len() > KEPT {
        let dropped = (digits.len() - KEPT) as i32;
        let mut kept = digits[..KEPT].to_vec();
        if digits[KEPT..].iter().any(|&d| d != b'0') {
            kept.push(b'1');
            sticky = kept;
            (&sticky[..], e10.saturating_add(dropped - 1))
        } else {
            sticky = kept;
            (&sticky[..], e10.saturating_add(dropped))
        }
    } else {
        (digits, e10)
    };
    // Numbers far outside f64's range, decided before any big arithmetic.
    let magnitude = digits.len() as i32 + e10;
    if magnitude < -330 {
        return Some(0.0);
    }
    if magnitude > 310 {
        return None;
    }
    let lead = &digits[..digits.len().min(19)];
    let w = lead.iter().fold(0u64, |w, &d| w * 10 + u64::from(d - b'0'));
    let e = e10 + (digits.len() - lead.len()) as i32;
    if digits.len() == lead.len() && w < (1 << 53) && (-22..=22).contains(&e) {
        // Both operands exact: one correctly rounded operation.
        let w = w as f64;
        return Some(if e >= 0 {
            w * POW10[e as usize]
        } else {
            w / POW10[-e as usize]
        });
    }
    // A guess within a few units in the last place, then exact comparisons walk it home.
    let half = e / 2;
    let mut z = w as f64 * 10f64.powi(half) * 10f64.powi(e - half);
    if !z.is_finite() {
        z = f64::MAX;
    }
    if z == 0.0 {
        z = f64::from_bits(1);
    }
    loop {
        let up = f64::from_bits(z.to_bits() + 1);
        let even = z.to_bits() & 1 == 0;
        if z == f64::MAX || !up.is_finite() {
            // Past MAX's upper halfway point is infinity: not a JSON number we can hold.
            let (m, k) = decompose(z);
            if compare(digits, e10, 2 * m + 1, k - 1) != Ordering::Less {
                return None;
            }
        } else {
            match compare_halfway(digits, e10, z, up) {
                Ordering::Greater => {
                    z = up;
                    continue;
                }
                Ordering::Equal if !even => {
                    z = up;
                    continue;
                }
                _ => {}
            }
        }
        let down = f64::from_bits(z.to_bits() - 1);
        let below = if z.to_bits() == 1 {
            // Below the smallest subnormal's lower halfway point is zero.
            compare(digits, e10, 1, -1075)
        } else {
            compare_halfway(digits, e10, down, z)
        };
        match below {
            Ordering::Less => {
                if z.to_bits() == 1 {
                    return Some(0.0);
                }
                z = down;
            }
            Ordering::Equal if !even => {
                return Some(if z.to_bits() == 1 { 0.0 } else { down });
            }
            _ => return Some(z),
        }
    }
}

/// `digits` (of `0.digits × 10^point`) plus one unit in the last place.
fn increment(digits: &[u8], point: i32) -> (Vec<u8>, i32) {
    let mut out = digits.to_vec();
    for d in out.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return (out, point);
        }
    }
    // All nines: 0.99… becomes 0.1 × 10^(point + 1).
    out.insert(0, b'1');
    out.pop();
    (out, point + 1)
}

/// The shortest decimal digits that parse back to the positive finite `x`, and the exponent:
/// `x ≈ 0.d₁d₂… × 10^exp`.
fn shortest(x: f64) -> (Vec<u8>, i32) {
    let (m, k) = decompose(x);
    let mut n = Big::from_u64(m);
    let mut e10 = 0;
    if k >= 0 {
        n.mul_pow2(k as u32);
    } else {
        // m / 2^j = m × 5^j / 10^j
        n.mul_pow5(k.unsigned_abs());
        e10 = k;
    }
    let mut exact = n.digits();
    let point = exact.len() as i32 + e10; // x = 0.exact × 10^point
    while exact.last() == Some(&b'0') {
        exact.pop();
    }
    for p in 1..=exact.len().min(17) {
        let down = exact[..p].to_vec();
        let (up, up_point) = increment(&down, point);
        let up_is_nearest = match exact.get(p) {
            None => false,
            Some(&d) if d > b'5' => true,
            Some(&d) if d < b'5' => false,
            // Exactly a half only if nothing non-zero follows (trailing zeros were trimmed).
            Some(_) if exact.len() > p + 1 => true,
            Some(_) => down.last().is_some_and(|d| (d - b'0') % 2 == 1),
        };
        // The nearest p digits first; at a power of two the interval that reads back as `x`
        // is lopsided (the gap below is half the gap above), so the other neighbour may be the
        // one that does.
        let mut candidates = [(down, point), (up, up_point)];
        if up_is_nearest {
            candidates.swap(0, 1);
        }
        for (mut digits, point) in candidates {
            while digits.last() == Some(&b'0') {
                digits.pop();
            }
            if parse(&digits, point - digits.len() as i32) == Some(x) {
                return (digits, point);
            }
        }
    }
    (exact, point)
}

/// Writes a finite `f64` as a JSON number that parses back to it, as serde_json does: `1.5`,
/// `100.0`, `1e+300`, `-2.5e-7`.
pub(crate) fn write(out: &mut Vec<u8>, x: f64) {
    if x.is_sign_negative() {
        out.push(b'-');
    }
    let x = x.abs();
    if x == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    let (digits, point) = shortest(x);
    // serde_json's layout: plain digits for decimal exponents -5 to 15, else scientific.
    if (-4..=0).contains(&point) {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
        out.extend_from_slice(&digits);
    } else if (1..=16).contains(&point) {
        let point = point as usize;
        if digits.len() <= point {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', point - digits.len()));
            out.extend_from_slice(b".0");
        } else {
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        let exp = point - 1;
        out.push(if exp < 0 { b'-' } else { b'+' });
        crate::json::write_u64(out, u64::from(exp.unsigned_abs()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits decimal text the way the reader does: significant digits and exponent.
    fn split(text: &str) -> (Vec<u8>, i32) {
        let (mantissa, exp) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().unwrap()),
            None => (text, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let mut e10 = exp - frac.len() as i32;
        while digits.first() == Some(&b'0') {
            digits.remove(0);
        }
        while digits.last() == Some(&b'0') {
            digits.pop();
            e10 += 1;
        }
        (digits, e10)
    }

    fn check(x: f64) {
        let mut out = Vec::new();
        write(&mut out, x);
        let text = String::from_utf8(out).unwrap();
        let back: f64 = text.parse().unwrap();
        assert_eq!(back.to_bits(), x.to_bits(), "{x:e} printed as {text}");
        let (digits, e10) = split(text.trim_start_matches('-'));
        let parsed = parse(&digits, e10).unwrap();
        assert_eq!(parsed, x.abs(), "{text} parsed back as {parsed:e}");
        // Exactly what serde_json (the host) writes: shortest digits, same layout.
        assert_eq!(text, serde_json::to_string(&x).unwrap(), "{x:e}");
    }

    #[test]
    fn every_kind_of_float_prints_shortest_and_parses_back_exactly() {
        for x in [
            0.1,
            0.2,
            0.3,
            1.5,
            100.0,
            1e21,
            1e22,
            1e23,
            123456789.0,
            0.30000000000000004,
            1.7976931348623157e308,
            5e-324,
            2.2250738585072014e-308,
            2.225073858507201e-308,
            9007199254740993.0,
            1e-7,
            4.35,
            8.41e21,
            5e-310,
            1.2345678901234567e-300,
        ] {
            check(x);
            check(-x);
        }
        // Powers of two (a lopsided interval below them) and the layout's edges.
        for e in -1074..=1023 {
            check(2f64.powi(e));
        }
        for x in [
            1e15, 1e16, 1e17, 1.5e16, 1e-4, 1e-5, 1e-6, 1.5e-5, 123.456, 0.001,
        ] {
            check(x);
        }
        // Bit patterns across the whole range.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state & !(1 << 63));
            if x.is_finite() {
                check(x);
            }
        }
    }

    #[test]
    fn long_and_halfway_decimals_round_like_the_standard_library() {
        for text in [
            "9007199254740993",
            "9007199254740992.5",
            "2.4703282292062327e-324",
            "2.4703282292062328e-324",
            "1.7976931348623158e308",
            "0.1000000000000000055511151231257827021181583404541015625",
            "123456789012345678901234567890",
            "1e-400",
            "4.9406564584124654e-324",
        ] {
            let (digits, e10) = split(text);
            assert_eq!(
                parse(&digits, e10),
                Some(text.parse::<f64>().unwrap()),
                "{text}"
            );
        }
        let (digits, e10) = split("1.8e308");
        assert_eq!(parse(&digits, e10), None);
        // More digits than any halfway point has: the tail still decides the rounding.
        let halfway = "9007199254740993";
        for tail in ["", "0000", "1"] {
            let long = format!("{halfway}.{}{tail}", "0".repeat(900));
            let (digits, e10) = split(&long);
            assert_eq!(
                parse(&digits, e10),
                Some(long.parse::<f64>().unwrap()),
                "…{tail}"
            );
        }
    }
}

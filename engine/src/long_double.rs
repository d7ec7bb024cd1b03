//! `INCRBYFLOAT`/`HINCRBYFLOAT` arithmetic, bit for bit as Redis 7.0 on
//! x86-64: the stored value and the increment are parsed with `strtold`
//! into an 80-bit x87 `long double` (64-bit mantissa), added with one
//! rounding, and printed with `%.17Lf` minus trailing zeros.
//!
//! An `f64` gives visibly different answers (`INCRBYFLOAT k 0.1` on a new
//! key answers `0.1` on Redis but `0.10000000000000001` with doubles) and a
//! smaller range (`1e400` is a valid increment), so the format is emulated
//! exactly: every step is done on exact big integers and rounded once, to
//! nearest with ties to even, like the FPU and glibc.
//!
//! This module also holds the one reader of C's `strtod`/`strtold` number
//! syntax ([`lex`]: decimal and C99 hexadecimal floats, `inf`,
//! `infinity`, `nan`, in any case, optionally signed) that every float
//! argument goes through: [`to_f64`] serves `getDoubleFromObject`-style
//! `double` arguments (`ZADD`, `ZINCRBY`, weights, score ranges) with the
//! same syntax and the same rounding, to IEEE double precision.

use std::cmp::Ordering;

use crate::reply::{Reply, errors};

/// Redis refuses to parse longer numbers (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;
/// A binary floating-point format: mantissa width and exponent range.
#[derive(Debug, Clone, Copy)]
struct Format {
    /// Mantissa bits (with the integer bit, explicit or not).
    bits: u64,
    /// Smallest exponent of the mantissa's last bit (that of the
    /// smallest subnormal).
    min_exp: i64,
    /// Largest exponent of the mantissa's last bit.
    max_exp: i64,
}

/// The x87 80-bit extended format (`long double` on x86-64): 2^-16382
/// is the smallest normal value, with its top bit 63 places above the
/// last; values stay below 2^16384.
const X87: Format = Format {
    bits: 64,
    min_exp: -16382 - 63,
    max_exp: 16384 - 64,
};

/// IEEE 754 binary64 (`double`): normal from 2^-1022, below 2^1024.
const F64: Format = Format {
    bits: 53,
    min_exp: -1022 - 52,
    max_exp: 1024 - 53,
};
/// Fraction digits of `%.17Lf`.
const FRACTION_DIGITS: u32 = 17;

/// `current + increment` as Redis's `INCRBYFLOAT` stores and answers it.
/// Errors, in Redis's order: the stored value is not a float, the
/// increment is not, the sum is infinite.
pub(crate) fn increment(current: &[u8], increment: &[u8]) -> Result<Vec<u8>, Reply> {
    let a = parse(current).ok_or_else(errors::not_float)?;
    let b = parse(increment).ok_or_else(errors::not_float)?;
    let sum = a
        .add(b)
        .ok_or_else(|| Reply::error("ERR increment would produce NaN or Infinity"))?;
    Ok(sum.to_human().into_bytes())
}

/// A finite x87 extended value, or infinity: `(-1)^neg * mant * 2^exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Finite { neg: bool, mant: u64, exp: i64 },
    Infinite { neg: bool },
}

impl Value {
    /// `self + other`, `None` when infinite (overflow, or an infinite
    /// operand: Redis refuses both).
    fn add(self, other: Value) -> Option<Value> {
        let (
            Value::Finite {
                neg: an,
                mant: am,
                exp: ae,
            },
            Value::Finite {
                neg: bn,
                mant: bm,
                exp: be,
            },
        ) = (self, other)
        else {
            return None;
        };
        let low = ae.min(be);
        let a = Big::from(am).shl((ae - low) as u64);
        let b = Big::from(bm).shl((be - low) as u64);
        let (neg, magnitude) = if an == bn {
            (an, a.add(&b))
        } else {
            match a.cmp(&b) {
                Ordering::Less => (bn, b.sub(&a)),
                // x + (-x) is +0 when rounding to nearest.
                Ordering::Equal => (false, Big::zero()),
                Ordering::Greater => (an, a.sub(&b)),
            }
        };
        match round(X87, neg, &magnitude, low, false) {
            v @ Value::Finite { .. } => Some(v),
            Value::Infinite { .. } => None,
        }
    }

    /// `%.17Lf` with trailing zeros (and a bare point) removed, and `-0`
    /// printed as `0`: Redis's `ld2string(…, LD_STR_HUMAN)`.
    fn to_human(self) -> String {
        let Value::Finite { neg, mant, exp } = self else {
            unreachable!("Redis refuses infinite sums before printing");
        };
        let scale = Big::from(10).pow(FRACTION_DIGITS);
        let scaled = Big::from(mant).mul(&scale);
        let units = if exp >= 0 {
            scaled.shl(exp as u64)
        } else {
            scaled.shr_round_even(exp.unsigned_abs())
        };
        let digits = units.to_decimal();
        let digits = format!("{digits:0>18}");
        let (int, frac) = digits.split_at(digits.len() - FRACTION_DIGITS as usize);
        let frac = frac.trim_end_matches('0');
        let mut text = String::new();
        if neg {
            text.push('-');
        }
        text.push_str(int);
        if !frac.is_empty() {
            text.push('.');
            text.push_str(frac);
        }
        if text == "-0" {
            text = "0".to_owned();
        }
        text
    }
}

/// Rounds `magnitude * 2^exp` (plus a little more if `sticky`) to the
/// nearest value of `fmt`, ties to even; subnormal below its smallest
/// normal value, infinite from its overflow threshold.
fn round(fmt: Format, neg: bool, magnitude: &Big, exp: i64, sticky: bool) -> Value {
    let bits = magnitude.bit_len();
    if bits == 0 {
        return Value::Finite {
            neg,
            mant: 0,
            exp: fmt.min_exp,
        };
    }
    let mut shift = bits as i64 - fmt.bits as i64;
    if exp + shift < fmt.min_exp {
        shift = fmt.min_exp - exp;
    }
    let (mut mant, mut e) = if shift <= 0 {
        (magnitude.shl(shift.unsigned_abs()).low_u64(), exp + shift)
    } else {
        let s = shift as u64;
        let kept = magnitude.shr(s).low_u64();
        let half = magnitude.bit(s - 1);
        let rest = sticky || magnitude.any_below(s - 1);
        let up = half && (rest || kept & 1 == 1);
        let rounded = u128::from(kept) + u128::from(up);
        if rounded >> fmt.bits != 0 {
            // Rounded up to the next power of two: one bit more.
            ((rounded >> 1) as u64, exp + shift + 1)
        } else {
            (rounded as u64, exp + shift)
        }
    };
    if mant != 0 && e < fmt.min_exp {
        // Only reachable without rounding (shift <= 0): normalise down.
        mant >>= fmt.min_exp - e;
        e = fmt.min_exp;
    }
    if e > fmt.max_exp {
        Value::Infinite { neg }
    } else {
        Value::Finite { neg, mant, exp: e }
    }
}

/// A whole argument read with C's `strtod`/`strtold` syntax (see
/// [`lex`]).
#[derive(Debug)]
pub(crate) enum Literal<'a> {
    /// `inf` or `infinity`, in any case.
    Infinite { neg: bool },
    /// `nan` (Redis refuses NaN everywhere, but reads it first).
    NaN,
    /// A decimal number: `text` is the whole argument (sign included).
    Decimal {
        neg: bool,
        text: &'a str,
        parts: Parts,
    },
    /// A C99 hexadecimal float (`0x1.8p3`).
    Hex { neg: bool, parts: Parts },
}

impl Literal<'_> {
    /// Whether the digits written were not all zero: such a number that
    /// rounds to zero underflowed (`ERANGE`).
    fn nonzero(&self) -> bool {
        match self {
            Literal::Infinite { .. } | Literal::NaN => true,
            Literal::Decimal { parts, .. } | Literal::Hex { parts, .. } => {
                parts.digits.iter().any(|d| !matches!(d, b'0'))
            }
        }
    }
}

/// Reads `arg` as C's `strtod` would, requiring it to consume every byte:
/// an optional sign, then `inf`/`infinity`/`nan` (any case), a decimal
/// number (`1`, `.5`, `5.`, `-1.5e3`) or a hexadecimal one (`0x10`,
/// `0X1P-2`, `0x.8`, `0x1.`); no leading or trailing spaces, no `_`, no
/// bare exponent (`1e`, `0x1p`). `None` is what `strtod` would stop
/// short of the end on (or not read at all).
pub(crate) fn lex(arg: &[u8]) -> Option<Literal<'_>> {
    let text = std::str::from_utf8(arg).ok()?;
    let (neg, body) = match arg.first()? {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(Literal::Infinite { neg });
    }
    if body.eq_ignore_ascii_case(b"nan") {
        return Some(Literal::NaN);
    }
    if body.len() > 2 && body[..2].eq_ignore_ascii_case(b"0x") {
        let parts = split(&body[2..], u8::is_ascii_hexdigit, b'p')?;
        return Some(Literal::Hex { neg, parts });
    }
    let parts = split(body, u8::is_ascii_digit, b'e')?;
    Some(Literal::Decimal { neg, text, parts })
}

/// A `double` argument as Redis's `getDoubleFromObject` reads it
/// (`strtod` over the whole argument, see [`lex`]), with the flag `strtod`
/// raises as `ERANGE` with a useless result: a finite number that
/// overflowed to infinity, or a nonzero one that underflowed to zero.
/// NaN is returned as NaN; callers refuse it.
pub(crate) fn to_f64(arg: &[u8]) -> Option<(f64, bool)> {
    let literal = lex(arg)?;
    let value = match &literal {
        Literal::Infinite { neg: false } => return Some((f64::INFINITY, false)),
        Literal::Infinite { neg: true } => return Some((f64::NEG_INFINITY, false)),
        Literal::NaN => return Some((f64::NAN, false)),
        // The standard library rounds decimals correctly, as glibc does,
        // and reads the syntax `lex` accepted.
        Literal::Decimal { text, .. } => text.parse::<f64>().ok()?,
        Literal::Hex { neg, parts } => match hex_value(F64, *neg, parts).0 {
            Value::Infinite { neg } => {
                if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            }
            Value::Finite { neg, mant, exp } => {
                let magnitude = scale(mant as f64, exp);
                if neg { -magnitude } else { magnitude }
            }
        },
    };
    let out_of_range = value.is_infinite() || (value == 0.0 && literal.nonzero());
    Some((value, out_of_range))
}

/// `x * 2^exp`, exactly when the result is a double (as rounding to
/// [`F64`] made it): the power is applied in steps that stay normal.
fn scale(x: f64, exp: i64) -> f64 {
    let pow2 = |e: i64| f64::from_bits(((e + 1023) as u64) << 52);
    if exp < -1022 {
        x * pow2(-1022) * pow2(exp + 1022)
    } else {
        x * pow2(exp)
    }
}

/// Parses like Redis's `string2ld`: glibc `strtold` over the whole
/// argument (see [`lex`]), refusing leading spaces, NaN, and results out
/// of range (overflow, or a nonzero number that underflowed to zero). A
/// NUL byte stops `strtold` short of the end, so it is refused too.
fn parse(arg: &[u8]) -> Option<Value> {
    if arg.len() >= MAX_CHARS {
        return None;
    }
    let literal = lex(arg)?;
    let (value, nonzero) = match literal {
        Literal::Infinite { neg } => return Some(Value::Infinite { neg }),
        Literal::NaN => return None,
        Literal::Decimal { neg, parts, .. } => decimal_value(neg, &parts),
        Literal::Hex { neg, parts } => hex_value(X87, neg, &parts),
    };
    match value {
        Value::Infinite { .. } => None,
        Value::Finite { mant: 0, .. } if nonzero => None,
        finite => Some(finite),
    }
}

/// The digits of a number: the mantissa digits (point removed), how many
/// of them follow the point, and the exponent after `e`/`p`.
#[derive(Debug)]
pub(crate) struct Parts {
    digits: Vec<u8>,
    fraction_len: i64,
    exponent: i64,
}

/// Splits `body` into [`Parts`] with `is_digit`, exponent marker `marker`;
/// `None` unless the whole body is a well-formed number.
fn split(body: &[u8], is_digit: fn(&u8) -> bool, marker: u8) -> Option<Parts> {
    let int_len = body.iter().take_while(|b| is_digit(b)).count();
    let mut rest = &body[int_len..];
    let mut digits = body[..int_len].to_vec();
    let mut fraction_len = 0;
    if let Some(after) = rest.strip_prefix(b".") {
        let n = after.iter().take_while(|b| is_digit(b)).count();
        digits.extend_from_slice(&after[..n]);
        fraction_len = n as i64;
        rest = &after[n..];
    }
    if digits.is_empty() {
        return None;
    }
    let mut exponent = 0i64;
    if let Some((first, after)) = rest.split_first()
        && first.eq_ignore_ascii_case(&marker)
    {
        let (sign, digits_part) = match after.first() {
            Some(b'-') => (-1, &after[1..]),
            Some(b'+') => (1, &after[1..]),
            _ => (1, after),
        };
        if digits_part.is_empty() || !digits_part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Saturate: anything this large over- or underflows anyway.
        exponent = digits_part.iter().fold(0i64, |acc, d| {
            (acc * 10 + i64::from(d - b'0')).min(1_000_000_000)
        }) * sign;
        rest = &[];
    }
    rest.is_empty().then_some(Parts {
        digits,
        fraction_len,
        exponent,
    })
}

/// A decimal number as an x87 value; also whether its digits were
/// nonzero.
fn decimal_value(neg: bool, parts: &Parts) -> (Value, bool) {
    let digits: Vec<u8> = parts.digits.iter().map(|d| d - b'0').collect();
    let first = digits.iter().position(|&d| d != 0);
    let Some(first) = first else {
        return (round(X87, neg, &Big::zero(), 0, false), false);
    };
    let digits = &digits[first..];
    let power = parts.exponent - parts.fraction_len;
    // Decimal magnitude of the leading digit, to reject hopeless ranges
    // before building enormous powers of ten.
    let magnitude = power + digits.len() as i64;
    if magnitude > 4940 {
        return (Value::Infinite { neg }, true);
    }
    if magnitude < -4960 {
        return (round(X87, neg, &Big::zero(), 0, false), true);
    }
    let mantissa = digits.iter().fold(Big::zero(), |acc, &d| {
        acc.mul_small(10).add(&Big::from(u64::from(d)))
    });
    let value = if power >= 0 {
        round(
            X87,
            neg,
            &mantissa.mul(&Big::from(10).pow(power as u32)),
            0,
            false,
        )
    } else {
        let divisor = Big::from(10).pow(power.unsigned_abs() as u32);
        // Enough quotient bits for the mantissa, a rounding bit and more.
        let extra = (X87.bits + 2 + divisor.bit_len()).saturating_sub(mantissa.bit_len());
        let (quotient, remainder) = mantissa.shl(extra).div_rem(&divisor);
        round(X87, neg, &quotient, -(extra as i64), !remainder.is_zero())
    };
    (value, true)
}

/// A C99 hexadecimal float (digits after its `0x`) rounded to `fmt`;
/// also whether its digits were nonzero.
fn hex_value(fmt: Format, neg: bool, parts: &Parts) -> (Value, bool) {
    let mantissa = parts.digits.iter().fold(Big::zero(), |acc, d| {
        let v = (*d as char).to_digit(16).unwrap_or(0);
        acc.mul_small(16).add(&Big::from(u64::from(v)))
    });
    let nonzero = !mantissa.is_zero();
    let exp = parts.exponent.saturating_sub(4 * parts.fraction_len);
    if nonzero && exp + mantissa.bit_len() as i64 > fmt.max_exp + fmt.bits as i64 {
        return (Value::Infinite { neg }, true);
    }
    // Far below the smallest subnormal everything rounds to zero: clamp,
    // so shifts stay small.
    let exp = exp.max(fmt.min_exp - 2 * fmt.bits as i64 - mantissa.bit_len() as i64);
    (round(fmt, neg, &mantissa, exp, false), nonzero)
}

/// A minimal unsigned big integer (little-endian 32-bit limbs, no
/// trailing zero limbs): just what exact parsing, adding and printing of
/// x87 values need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Big(Vec<u32>);

impl From<u64> for Big {
    fn from(v: u64) -> Self {
        Big(vec![v as u32, (v >> 32) as u32]).trimmed()
    }
}

impl Big {
    fn zero() -> Self {
        Big(Vec::new())
    }

    fn trimmed(mut self) -> Self {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        self
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bit_len(&self) -> u64 {
        self.0.last().map_or(0, |top| {
            (self.0.len() as u64 - 1) * 32 + u64::from(32 - top.leading_zeros())
        })
    }

    fn bit(&self, i: u64) -> bool {
        self.0
            .get((i / 32) as usize)
            .is_some_and(|limb| limb >> (i % 32) & 1 == 1)
    }

    /// Whether any bit below bit `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let whole = (i / 32) as usize;
        self.0.iter().take(whole).any(|&l| l != 0)
            || self
                .0
                .get(whole)
                .is_some_and(|&l| l & ((1u32 << (i % 32)) - 1) != 0)
    }

    fn low_u64(&self) -> u64 {
        let limb = |i: usize| u64::from(self.0.get(i).copied().unwrap_or(0));
        limb(0) | limb(1) << 32
    }

    fn shl(&self, bits: u64) -> Big {
        if self.is_zero() {
            return Big::zero();
        }
        let (limbs, bits) = ((bits / 32) as usize, (bits % 32) as u32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &l in &self.0 {
            out.push(if bits == 0 { l } else { (l << bits) | carry });
            carry = if bits == 0 { 0 } else { l >> (32 - bits) };
        }
        out.push(carry);
        Big(out).trimmed()
    }

    fn shr(&self, bits: u64) -> Big {
        let (limbs, bits) = ((bits / 32) as usize, (bits % 32) as u32);
        if limbs >= self.0.len() {
            return Big::zero();
        }
        let src = &self.0[limbs..];
        let out = (0..src.len())
            .map(|i| {
                let high = src.get(i + 1).copied().unwrap_or(0);
                if bits == 0 {
                    src[i]
                } else {
                    (src[i] >> bits) | (high << (32 - bits))
                }
            })
            .collect();
        Big(out).trimmed()
    }

    /// `self / 2^bits`, rounded to nearest with ties to even.
    fn shr_round_even(&self, bits: u64) -> Big {
        let kept = self.shr(bits);
        if bits == 0 || !self.bit(bits - 1) {
            return kept;
        }
        if self.any_below(bits - 1) || kept.bit(0) {
            kept.add(&Big::from(1))
        } else {
            kept
        }
    }

    fn add(&self, other: &Big) -> Big {
        let n = self.0.len().max(other.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let sum = u64::from(self.0.get(i).copied().unwrap_or(0))
                + u64::from(other.0.get(i).copied().unwrap_or(0))
                + carry;
            out.push(sum as u32);
            carry = sum >> 32;
        }
        out.push(carry as u32);
        Big(out).trimmed()
    }

    /// `self - other`, which must not be negative.
    fn sub(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut d =
                i64::from(self.0[i]) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            borrow = i64::from(d < 0);
            if d < 0 {
                d += 1 << 32;
            }
            out.push(d as u32);
        }
        Big(out).trimmed()
    }

    fn mul_small(&self, m: u32) -> Big {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut carry = 0u64;
        for &l in &self.0 {
            let p = u64::from(l) * u64::from(m) + carry;
            out.push(p as u32);
            carry = p >> 32;
        }
        out.push(carry as u32);
        Big(out).trimmed()
    }

    fn mul(&self, other: &Big) -> Big {
        let mut out = vec![0u32; self.0.len() + other.0.len() + 1];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in other.0.iter().enumerate() {
                let t = u64::from(out[i + j]) + u64::from(a) * u64::from(b) + carry;
                out[i + j] = t as u32;
                carry = t >> 32;
            }
            let mut k = i + other.0.len();
            while carry != 0 {
                let t = u64::from(out[k]) + carry;
                out[k] = t as u32;
                carry = t >> 32;
                k += 1;
            }
        }
        Big(out).trimmed()
    }

    fn pow(&self, mut e: u32) -> Big {
        let (mut base, mut acc) = (self.clone(), Big::from(1));
        while e > 0 {
            if e & 1 == 1 {
                acc = acc.mul(&base);
            }
            base = base.mul(&base);
            e >>= 1;
        }
        acc
    }

    /// Quotient and remainder, by binary long division (the quotients
    /// needed here are short).
    fn div_rem(&self, divisor: &Big) -> (Big, Big) {
        let mut rem = self.clone();
        let mut quotient = Big::zero();
        let (n, d) = (self.bit_len(), divisor.bit_len());
        if n < d {
            return (quotient, rem);
        }
        let mut q = vec![0u32; ((n - d) / 32 + 1) as usize];
        for i in (0..=n - d).rev() {
            let shifted = divisor.shl(i);
            if rem.cmp(&shifted) != Ordering::Less {
                rem = rem.sub(&shifted);
                q[(i / 32) as usize] |= 1 << (i % 32);
            }
        }
        quotient.0 = q;
        (quotient.trimmed(), rem)
    }

    /// Divides by `d` in place, returning the remainder.
    fn div_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.0.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*l);
            *l = (cur / u64::from(d)) as u32;
            rem = cur % u64::from(d);
        }
        *self = std::mem::take(self).trimmed();
        rem as u32
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".to_owned();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_small(1_000_000_000));
        }
        let mut text = chunks.pop().map(|c| c.to_string()).unwrap_or_default();
        for c in chunks.iter().rev() {
            text.push_str(&format!("{c:09}"));
        }
        text
    }
}

impl PartialOrd for Big {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Big {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(current: &str, by: &str) -> Result<String, Reply> {
        increment(current.as_bytes(), by.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn sums_print_like_redis() {
        // Expected values were produced by redis-server 7.0.15.
        assert_eq!(incr("0", "0.1").unwrap(), "0.1");
        assert_eq!(incr("10.5", "0.1").unwrap(), "10.6");
        assert_eq!(incr("1", "0.1").unwrap(), "1.1");
        assert_eq!(incr("5.0e3", "2.0e2").unwrap(), "5200");
        assert_eq!(incr("0", "-0").unwrap(), "0");
        assert_eq!(incr("1", "-1").unwrap(), "0");
        assert_eq!(incr("0", "1.5e-5").unwrap(), "0.000015");
        assert_eq!(incr("0", "1e-18").unwrap(), "0");
        assert_eq!(incr("0", "-1e-18").unwrap(), "0");
        assert_eq!(incr("3", "0x10").unwrap(), "19");
        assert_eq!(
            incr("0", "1e400").unwrap(),
            "10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"
        );
    }

    #[test]
    fn invalid_numbers_and_infinite_sums_are_refused() {
        for bad in [
            "", " 1", "1 ", "abc", "nan", "1e", "0x", "1e99999", "1e-99999", ".",
        ] {
            assert_eq!(incr("0", bad), Err(errors::not_float()), "{bad:?}");
        }
        assert_eq!(incr("x", "1"), Err(errors::not_float()));
        let infinite = Err(Reply::error("ERR increment would produce NaN or Infinity"));
        assert_eq!(incr("0", "inf"), infinite);
        assert_eq!(incr("1e4932", "1e4932"), infinite);
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        // 2^64 + 1 is not representable: the tie rounds to the even 2^64.
        assert_eq!(
            incr("18446744073709551616", "1").unwrap(),
            "18446744073709551616"
        );
        assert_eq!(
            incr("18446744073709551616", "3").unwrap(),
            "18446744073709551620"
        );
    }
}

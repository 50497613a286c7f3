//! Kubernetes `resource.Quantity` strings (`500m`, `0.5`, `1e3`, `128Mi`) → integers.
//!
//! The grammar is Kubernetes' own:
//!
//! ```text
//! quantity ::= sign? number suffix
//! number   ::= digits | digits "." digits? | "." digits
//! suffix   ::= "" | binarySI | decimalSI | ("e" | "E") sign? digits
//! binarySI ::= Ki | Mi | Gi | Ti | Pi | Ei
//! decimalSI::= n | u | m | k | M | G | T | P | E
//! ```
//!
//! Values are computed exactly (no floating point) and rounded up, as `Quantity.Value()` and
//! `Quantity.MilliValue()` do; anything above `2^63 - 1` is an error rather than a silent cap.

/// The largest value Kubernetes can represent (`2^63 - 1`).
const MAX: u128 = i64::MAX as u128;

/// The largest decimal exponent worth computing with: beyond it any non-zero value overflows.
const MAX_EXPONENT: i64 = 1000;

/// Parses a memory (or storage) quantity into bytes, rounding fractional bytes up.
///
/// `"128974848"`, `"129e6"`, `"129M"` and `"123Mi"` are all accepted; negative values are errors.
pub fn parse_memory_bytes(q: &str) -> Result<u64, String> {
    Quantity::parse(q)?.scaled_ceil(0, q)
}

/// Parses a CPU quantity into millicores, rounding up: `"500m"` → 500, `"1"` → 1000,
/// `"0.1"` → 100, `"1.5"` → 1500.
pub fn parse_cpu_millis(q: &str) -> Result<u64, String> {
    Quantity::parse(q)?.scaled_ceil(3, q)
}

/// An exact non-negative quantity: `mantissa × 10^exp10 × 2^exp2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quantity {
    mantissa: u128,
    exp10: i64,
    exp2: u32,
}

impl Quantity {
    /// Parses `q`, rejecting malformed and negative quantities.
    fn parse(q: &str) -> Result<Quantity, String> {
        let invalid = || format!("invalid quantity {q:?}");
        let (negative, rest) = split_sign(q);
        let (int_digits, rest) = split_digits(rest);
        let (frac_digits, rest) = match rest.strip_prefix('.') {
            Some(after_dot) => split_digits(after_dot),
            None => ("", rest),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(invalid());
        }
        let (suffix_exp10, exp2) = parse_suffix(rest).ok_or_else(invalid)?;
        let (mantissa, trailing_zeros) = parse_mantissa(int_digits, frac_digits)
            .ok_or_else(|| format!("quantity {q:?} has too many digits"))?;
        if negative && mantissa != 0 {
            return Err(format!("invalid quantity {q:?}: must not be negative"));
        }
        let frac_len = i64::try_from(frac_digits.len()).map_err(|_| invalid())?;
        Ok(Quantity {
            mantissa,
            exp10: suffix_exp10 + trailing_zeros - frac_len,
            exp2,
        })
    }

    /// `ceil(self × 10^scale)` as a `u64`, or an error naming `q` when it exceeds `2^63 - 1`.
    fn scaled_ceil(self, scale: i64, q: &str) -> Result<u64, String> {
        let too_large = || format!("quantity {q:?} is too large");
        if self.mantissa == 0 {
            return Ok(0);
        }
        let base = 1u128
            .checked_shl(self.exp2)
            .and_then(|factor| self.mantissa.checked_mul(factor))
            .ok_or_else(too_large)?;
        let exp10 = self.exp10 + scale;
        let value = if exp10 >= 0 {
            pow10(exp10).and_then(|p| base.checked_mul(p))
        } else {
            // `base` < 2^128 < 10^39: dividing by 10^39 or more leaves a fraction in (0, 1).
            Some(pow10(-exp10).map_or(1, |p| base.div_ceil(p)))
        };
        value
            .filter(|v| *v <= MAX)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(too_large)
    }
}

/// Splits an optional leading `+` or `-`; returns whether it was `-`.
fn split_sign(s: &str) -> (bool, &str) {
    if let Some(rest) = s.strip_prefix('-') {
        (true, rest)
    } else {
        (false, s.strip_prefix('+').unwrap_or(s))
    }
}

/// Splits the leading ASCII digits of `s` from the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// The integer value of `int_digits ++ frac_digits` without its trailing zeros, and how many
/// zeros were dropped; `None` when it does not fit in a `u128`.
fn parse_mantissa(int_digits: &str, frac_digits: &str) -> Option<(u128, i64)> {
    let digits = format!("{int_digits}{frac_digits}");
    let significant = digits.trim_start_matches('0');
    let kept = significant.trim_end_matches('0');
    if kept.is_empty() {
        return Some((0, 0));
    }
    let zeros = i64::try_from(significant.len() - kept.len()).ok()?;
    Some((kept.parse().ok()?, zeros))
}

/// The `(decimal exponent, binary exponent)` a suffix stands for; `None` when it is not one.
fn parse_suffix(suffix: &str) -> Option<(i64, u32)> {
    let decimal = |exp10| Some((exp10, 0));
    let binary = |exp2| Some((0, exp2));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => parse_exponent(suffix).map(|exp10| (exp10, 0)),
    }
}

/// `e<signed integer>` or `E<signed integer>`, bounded to ±[`MAX_EXPONENT`].
fn parse_exponent(suffix: &str) -> Option<i64> {
    let rest = suffix.strip_prefix(['e', 'E'])?;
    let (negative, digits) = split_sign(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .trim_start_matches('0')
        .parse::<i64>()
        .map_or(MAX_EXPONENT + 1, |m| m.min(MAX_EXPONENT + 1));
    Some(if negative { -magnitude } else { magnitude })
}

/// `10^exp` when it fits in a `u128` (`exp` ≤ 38).
fn pow10(exp: i64) -> Option<u128> {
    10u128.checked_pow(u32::try_from(exp).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts `parse(q) == Ok(want)` for each case.
    fn assert_values(parse: fn(&str) -> Result<u64, String>, cases: &[(&str, u64)]) {
        for &(q, want) in cases {
            assert_eq!(parse(q), Ok(want), "{q:?}");
        }
    }

    #[test]
    fn memory_plain_and_exponent_forms() {
        assert_values(
            parse_memory_bytes,
            &[
                ("128974848", 128_974_848),
                ("129e6", 129_000_000),
                ("12E6", 12_000_000),
                ("1e3", 1000),
                ("1e+3", 1000),
                ("0", 0),
                ("+5", 5),
                ("-0", 0),
            ],
        );
    }

    #[test]
    fn memory_decimal_suffixes() {
        assert_values(
            parse_memory_bytes,
            &[
                ("129M", 129_000_000),
                ("1k", 1000),
                ("1G", 1_000_000_000),
                ("1T", 1_000_000_000_000),
                ("1P", 1_000_000_000_000_000),
                ("1E", 1_000_000_000_000_000_000),
                ("1.5k", 1500),
            ],
        );
    }

    #[test]
    fn memory_binary_suffixes() {
        assert_values(
            parse_memory_bytes,
            &[
                ("1Ki", 1024),
                ("123Mi", 123 * 1024 * 1024),
                ("1Gi", 1 << 30),
                ("1Ti", 1 << 40),
                ("1Pi", 1 << 50),
                ("1Ei", 1 << 60),
                ("1.5Gi", 1536 * 1024 * 1024),
                ("0.5Ki", 512),
            ],
        );
    }

    #[test]
    fn memory_fractional_bytes_round_up() {
        assert_values(
            parse_memory_bytes,
            &[
                ("0.5", 1),
                ("500m", 1),
                ("1500m", 2),
                ("1n", 1),
                ("1.1", 2),
                ("1e-3", 1),
                ("1e-100", 1),
                ("0.001Ki", 2),
            ],
        );
    }

    #[test]
    fn number_forms() {
        assert_values(
            parse_memory_bytes,
            &[
                ("1.", 1),
                (".5k", 500),
                ("007", 7),
                ("1.000", 1),
                ("0.0", 0),
                ("0e1000000000000", 0),
                ("9223372036854775807", i64::MAX as u64),
            ],
        );
    }

    #[test]
    fn cpu_millis() {
        assert_values(
            parse_cpu_millis,
            &[
                ("500m", 500),
                ("1", 1000),
                ("0.1", 100),
                ("1.5", 1500),
                ("2", 2000),
                ("250m", 250),
                ("1e-3", 1),
                ("0.0001", 1),
                ("100u", 1),
                ("1k", 1_000_000),
            ],
        );
    }

    #[test]
    fn malformed_quantities_are_errors() {
        let malformed = [
            "", "12Q", "Mi", ".", "-", "1.2.3", "1 Mi", " 1", "1K", "1mi", "1e", "1e+", "1e1.5",
            "1Mii", "abc", "1ki", "0x10", "1_000",
        ];
        for q in malformed {
            assert_eq!(
                parse_memory_bytes(q),
                Err(format!("invalid quantity {q:?}"))
            );
            assert_eq!(parse_cpu_millis(q), Err(format!("invalid quantity {q:?}")));
        }
    }

    #[test]
    fn negative_quantities_are_errors() {
        for q in ["-1", "-500m", "-1Gi", "-1e3"] {
            let want = Err(format!("invalid quantity {q:?}: must not be negative"));
            assert_eq!(parse_memory_bytes(q), want);
            assert_eq!(parse_cpu_millis(q), want);
        }
    }

    #[test]
    fn too_large_quantities_are_errors() {
        let too_large = [
            "9223372036854775808",
            "8Ei",
            "1e19",
            "1e1000",
            "1e99999999999999999999",
        ];
        for q in too_large {
            let want = Err(format!("quantity {q:?} is too large"));
            assert_eq!(parse_memory_bytes(q), want);
        }
        assert_eq!(
            parse_cpu_millis("9223372036854775807"),
            Err("quantity \"9223372036854775807\" is too large".to_string())
        );
        let long = "1".repeat(60);
        assert_eq!(
            parse_memory_bytes(&long),
            Err(format!("quantity {long:?} has too many digits"))
        );
    }

    #[test]
    fn error_messages_are_lowercase_single_lines() {
        for q in ["12Q", "-1", "1e19"] {
            let err = parse_memory_bytes(q).err().unwrap_or_default();
            assert!(!err.is_empty());
            assert!(!err.contains('\n'));
            assert!(!err.ends_with('.'));
            assert!(err.starts_with(|c: char| c.is_lowercase()), "{err}");
        }
    }
}

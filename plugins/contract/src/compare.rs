//! The `compare` rule's operators and how two JSON values are ordered:
//! numbers numerically, ISO 8601 dates and RFC 3339 date-times as points in
//! time, other strings only for equality.

use serde_json::{Number, Value};
use std::cmp::Ordering;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>=`
    Ge,
    /// `>`
    Gt,
}

impl Op {
    /// Every operator, as written in a contract.
    pub const ALL: [(&'static str, Op); 6] = [
        ("<", Op::Lt),
        ("<=", Op::Le),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        (">", Op::Gt),
    ];

    /// The operator written `text`.
    pub fn parse(text: &str) -> Option<Op> {
        Op::ALL.iter().find(|(t, _)| *t == text).map(|(_, op)| *op)
    }

    /// How the operator is written.
    pub fn as_str(self) -> &'static str {
        Op::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(t, _)| t)
    }

    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Lt => ordering.is_lt(),
            Op::Le => ordering.is_le(),
            Op::Eq => ordering.is_eq(),
            Op::Ne => ordering.is_ne(),
            Op::Ge => ordering.is_ge(),
            Op::Gt => ordering.is_gt(),
        }
    }

    fn is_equality(self) -> bool {
        matches!(self, Op::Eq | Op::Ne)
    }
}

/// The outcome of comparing two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The comparison holds.
    Holds,
    /// The comparison does not hold.
    Fails,
    /// The values cannot be ordered (different types, strings that are not
    /// both dates or both date-times, booleans, arrays, objects).
    Incomparable,
}

/// Compares `left op right`.
///
/// Numbers compare numerically (`1 == 1.0`). Two strings that are both
/// ISO 8601 calendar dates (`2024-05-01`), or both RFC 3339 date-times with
/// an offset, or both without one, compare as points in time: plain
/// lexicographic order would misplace `10:00:00.5Z` before `10:00:00Z` and
/// ignore offsets. `==` and `!=` also take any other two values (strings by
/// their text, arrays and objects deeply); ordering them is
/// [`Outcome::Incomparable`].
pub fn compare(left: &Value, op: Op, right: &Value) -> Outcome {
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => Some(numbers(a, b)),
        (Value::String(a), Value::String(b)) => match (Instant::parse(a), Instant::parse(b)) {
            (Some(x), Some(y)) if x.partial_cmp(&y).is_some() => x.partial_cmp(&y),
            _ if op.is_equality() => Some(if a == b {
                Ordering::Equal
            } else {
                Ordering::Less
            }),
            _ => None,
        },
        _ if op.is_equality() => Some(if left == right {
            Ordering::Equal
        } else {
            Ordering::Less
        }),
        _ => None,
    };
    match ordering {
        Some(ordering) if op.holds(ordering) => Outcome::Holds,
        Some(_) => Outcome::Fails,
        None => Outcome::Incomparable,
    }
}

/// Orders two JSON numbers exactly when both are integers, as `f64`
/// otherwise.
pub fn numbers(a: &Number, b: &Number) -> Ordering {
    match (integer(a), integer(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ => float(a).total_cmp(&float(b)),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn float(n: &Number) -> f64 {
    // A `serde_json::Number` always has an `f64` view without the
    // `arbitrary_precision` feature; NaN cannot occur in JSON.
    n.as_f64().unwrap_or(f64::NAN)
}

/// A date or date-time reduced to something ordered. Values of different
/// forms are not ordered against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Instant {
    /// `YYYY-MM-DD`: days since 0000-03-01.
    Date(i64),
    /// RFC 3339 with `Z` or `±HH:MM`: UTC seconds and nanoseconds.
    Zoned(i64, u32),
    /// A date-time without an offset: local seconds and nanoseconds.
    Local(i64, u32),
}

impl PartialOrd for Instant {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Instant::Date(a), Instant::Date(b)) => Some(a.cmp(b)),
            (Instant::Zoned(a, x), Instant::Zoned(b, y))
            | (Instant::Local(a, x), Instant::Local(b, y)) => Some((a, x).cmp(&(b, y))),
            _ => None,
        }
    }
}

impl Instant {
    /// Parses `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]`
    /// (`t`, `z` accepted as RFC 3339 allows).
    fn parse(text: &str) -> Option<Instant> {
        let b = text.as_bytes();
        let days = date(b.get(..10)?)?;
        if b.len() == 10 {
            return Some(Instant::Date(days));
        }
        if !matches!(b.get(10), Some(b'T' | b't')) {
            return None;
        }
        let (hour, minute, second) = (
            digits(b.get(11..13)?)?,
            digits(b.get(14..16)?)?,
            digits(b.get(17..19)?)?,
        );
        if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
            return None;
        }
        // 60 for a leap second.
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let mut rest = b.get(19..)?;
        let mut nanos = 0u32;
        if let Some((b'.', fraction)) = rest.split_first() {
            let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
            if len == 0 {
                return None;
            }
            for (i, c) in fraction[..len].iter().enumerate() {
                if i < 9 {
                    nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
                }
            }
            rest = &fraction[len..];
        }
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
        match rest {
            [] => Some(Instant::Local(seconds, nanos)),
            [b'Z' | b'z'] => Some(Instant::Zoned(seconds, nanos)),
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
                if h > 23 || m > 59 {
                    return None;
                }
                let offset = h * 3600 + m * 60;
                let utc = if *sign == b'+' {
                    seconds - offset
                } else {
                    seconds + offset
                };
                Some(Instant::Zoned(utc, nanos))
            }
            _ => None,
        }
    }
}

/// `YYYY-MM-DD` as days since 0000-03-01 (a valid calendar date only).
fn date(b: &[u8]) -> Option<i64> {
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let (year, month, day) = (
        digits(b.get(..4)?)?,
        digits(b.get(5..7)?)?,
        digits(b.get(8..10)?)?,
    );
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days {
        return None;
    }
    // Days from civil (H. Hinnant), with years starting in March.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    Some(
        y * 365 + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400) + (153 * m + 2) / 5 + day
            - 1,
    )
}

/// ASCII decimal digits as a number; `None` for anything else.
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(left: Value, op: &str, right: Value) -> Outcome {
        compare(&left, Op::parse(op).unwrap(), &right)
    }

    #[test]
    fn numbers_compare_numerically_and_exactly() {
        assert_eq!(check(json!(1), "<=", json!(1.0)), Outcome::Holds);
        assert_eq!(check(json!(1), "==", json!(1.0)), Outcome::Holds);
        assert_eq!(check(json!(2.5), ">", json!(2)), Outcome::Holds);
        assert_eq!(check(json!(-3), "<", json!(u64::MAX)), Outcome::Holds);
        // 2^53 + 1 and 2^53 are equal as f64, not as integers.
        assert_eq!(
            check(
                json!(9_007_199_254_740_993u64),
                ">",
                json!(9_007_199_254_740_992u64)
            ),
            Outcome::Holds
        );
        assert_eq!(check(json!(5), "<", json!(4)), Outcome::Fails);
    }

    #[test]
    fn dates_and_date_times_compare_as_points_in_time() {
        assert_eq!(
            check(json!("2024-02-29"), "<", json!("2024-03-01")),
            Outcome::Holds
        );
        assert_eq!(
            check(json!("2023-12-31"), "<", json!("2024-01-01")),
            Outcome::Holds
        );
        assert_eq!(
            check(
                json!("2024-05-01T10:00:00Z"),
                "<",
                json!("2024-05-01T10:00:00.5Z")
            ),
            Outcome::Holds
        );
        assert_eq!(
            check(
                json!("2024-05-01T10:00:00+02:00"),
                "<",
                json!("2024-05-01T09:00:00Z")
            ),
            Outcome::Holds
        );
        assert_eq!(
            check(
                json!("2024-05-01T12:00:00+02:00"),
                "==",
                json!("2024-05-01T10:00:00z")
            ),
            Outcome::Holds
        );
        assert_eq!(
            check(
                json!("2024-05-01T10:00:00"),
                "<=",
                json!("2024-05-01T10:00:00")
            ),
            Outcome::Holds
        );
        // Different forms, invalid dates and other strings cannot be ordered.
        for (a, b) in [
            ("2024-05-01", "2024-05-01T00:00:00Z"),
            ("2024-05-01T00:00:00", "2024-05-01T00:00:00Z"),
            ("2023-02-29", "2024-01-01"),
            ("2024-13-01", "2024-01-01"),
            ("2024-05-01T24:00:00Z", "2024-05-01T00:00:00Z"),
            ("apple", "banana"),
            ("2024-05-01 ", "2024-05-02"),
        ] {
            assert_eq!(
                check(json!(a), "<", json!(b)),
                Outcome::Incomparable,
                "{a} {b}"
            );
        }
    }

    #[test]
    fn equality_takes_any_values() {
        assert_eq!(check(json!("a"), "==", json!("a")), Outcome::Holds);
        assert_eq!(check(json!("a"), "!=", json!("b")), Outcome::Holds);
        assert_eq!(check(json!("1"), "==", json!(1)), Outcome::Fails);
        assert_eq!(check(json!(true), "==", json!(true)), Outcome::Holds);
        assert_eq!(
            check(json!([1, {"a": 2}]), "==", json!([1, {"a": 2}])),
            Outcome::Holds
        );
        assert_eq!(check(json!(true), "<", json!(false)), Outcome::Incomparable);
        assert_eq!(check(json!("1"), "<", json!(2)), Outcome::Incomparable);
    }
}

//! Small serde helpers for exact round trips.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Deserializes an optional field so that an explicit `null` stays `Some(Value::Null)`
/// and only a missing field becomes `None`; the re-serialized JSON then equals the input.
pub fn keep_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Deserializes a whole number that JSON may write as `2615` or `2615.0` (JSON Schema calls
/// both integers; the facilitator's OpenAPI document promises the second is accepted too).
/// Fractions, negatives and numbers beyond `u64` are refused.
pub fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_u64() {
        return Ok(n);
    }
    const LIMIT: f64 = 18_446_744_073_709_551_616.0; // 2^64
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..LIMIT).contains(&f) => Ok(f as u64),
        _ => Err(serde::de::Error::custom(format!(
            "expected a whole number of seconds from 0 to 2^64-1, got {number}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<u64, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        whole_number(&mut de).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_in_either_spelling_and_nothing_else() {
        assert_eq!(read("2615"), Ok(2615));
        assert_eq!(read("2615.0"), Ok(2615));
        assert_eq!(read("0.0"), Ok(0));
        assert_eq!(read("1e3"), Ok(1000));
        assert_eq!(read("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "2615.5",
            "-1",
            "-0.5",
            "18446744073709551616",
            "1e20",
            "\"60\"",
            "null",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}

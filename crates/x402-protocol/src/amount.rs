//! Token amounts as the wire carries them: decimal strings of atomic units.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most decimal digits a 256-bit unsigned integer can need.
pub const MAX_AMOUNT_DIGITS: usize = 78;

/// A non-negative integer amount in the token's smallest unit, kept as its decimal text.
///
/// Chains parse it into their own integer type (U256 on EVM, u64 on Solana); the
/// protocol layer only guarantees it is plain decimal digits of bounded length.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenAmount(String);

/// Why a string is not a token amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Empty string.
    #[error("amount is empty")]
    Empty,
    /// Something other than ASCII digits.
    #[error("amount must contain only decimal digits")]
    NotDecimal,
    /// More digits than any 256-bit amount has.
    #[error("amount has more than {MAX_AMOUNT_DIGITS} digits")]
    TooLong,
}

impl TokenAmount {
    /// Validates decimal text as an amount.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotDecimal);
        }
        if text.len() > MAX_AMOUNT_DIGITS {
            return Err(AmountError::TooLong);
        }
        Ok(Self(text.to_owned()))
    }

    /// The decimal text as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value when it fits in 128 bits (always true for real-world stablecoin amounts).
    pub fn as_u128(&self) -> Option<u128> {
        self.0.parse().ok()
    }
}

impl From<u64> for TokenAmount {
    fn from(value: u64) -> Self {
        Self(value.to_string())
    }
}

impl fmt::Display for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenAmount({})", self.0)
    }
}

impl Serialize for TokenAmount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TokenAmount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(TokenAmount::parse("10000").unwrap().as_u128(), Some(10_000));
        assert_eq!(TokenAmount::parse("0").unwrap().as_str(), "0");
        assert_eq!(TokenAmount::parse(""), Err(AmountError::Empty));
        assert_eq!(TokenAmount::parse("-1"), Err(AmountError::NotDecimal));
        assert_eq!(TokenAmount::parse("1e6"), Err(AmountError::NotDecimal));
        assert_eq!(TokenAmount::parse(" 1"), Err(AmountError::NotDecimal));
        assert_eq!(
            TokenAmount::parse(&"9".repeat(79)),
            Err(AmountError::TooLong)
        );
        assert!(TokenAmount::parse(&"9".repeat(78))
            .unwrap()
            .as_u128()
            .is_none());
    }
}

//! CAIP-2 blockchain identifiers (`namespace:reference`).
//!
//! x402 v2 names every network this way, so a malformed id must be refused with an
//! error that tells an operator exactly which rule broke; the `Display` of
//! [`Caip2Error`] starts with "CAIP-2 parsing failed" because alert rules match it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Shortest namespace CAIP-2 allows.
pub const NAMESPACE_MIN_LEN: usize = 3;
/// Longest namespace CAIP-2 allows.
pub const NAMESPACE_MAX_LEN: usize = 8;
/// Longest reference CAIP-2 allows.
pub const REFERENCE_MAX_LEN: usize = 32;

/// A validated CAIP-2 chain id such as `eip155:84532`.
///
/// Stored as one string plus the split position so that `as_str` is free and the
/// type can be used as a map key on the request path without allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId {
    text: String,
    colon: usize,
}

/// Why a string is not a CAIP-2 chain id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CAIP-2 parsing failed: {input:?}: {rule}")]
pub struct Caip2Error {
    /// The rejected input, truncated to 100 characters so logs stay bounded.
    pub input: String,
    /// The rule the input broke.
    pub rule: Caip2Rule,
}

/// The CAIP-2 rules an input can break, each with an operator-readable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Caip2Rule {
    /// No `:` separating namespace and reference.
    #[error("missing ':' between namespace and reference")]
    MissingSeparator,
    /// Namespace shorter than 3 or longer than 8 characters.
    #[error("namespace must be 3 to 8 characters long")]
    NamespaceLength,
    /// Namespace holds a character outside `[-a-z0-9]`.
    #[error("namespace may contain only lowercase letters, digits and '-'")]
    NamespaceCharset,
    /// Reference empty or longer than 32 characters.
    #[error("reference must be 1 to 32 characters long")]
    ReferenceLength,
    /// Reference holds a character outside `[-_a-zA-Z0-9]`.
    #[error("reference may contain only letters, digits, '-' and '_'")]
    ReferenceCharset,
    /// An `eip155` reference that is not a decimal chain id without leading zeros.
    #[error("eip155 reference must be a decimal chain id without leading zeros")]
    Eip155Reference,
}

impl ChainId {
    /// Parses and validates `input` against the CAIP-2 grammar.
    pub fn parse(input: &str) -> Result<Self, Caip2Error> {
        let fail = |rule| Caip2Error {
            input: input.chars().take(100).collect(),
            rule,
        };
        let colon = input
            .find(':')
            .ok_or_else(|| fail(Caip2Rule::MissingSeparator))?;
        let (namespace, reference) = (&input[..colon], &input[colon + 1..]);
        if !(NAMESPACE_MIN_LEN..=NAMESPACE_MAX_LEN).contains(&namespace.len()) {
            return Err(fail(Caip2Rule::NamespaceLength));
        }
        if !namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(fail(Caip2Rule::NamespaceCharset));
        }
        if reference.is_empty() || reference.len() > REFERENCE_MAX_LEN {
            return Err(fail(Caip2Rule::ReferenceLength));
        }
        if !reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(fail(Caip2Rule::ReferenceCharset));
        }
        if namespace == "eip155"
            && (!reference.bytes().all(|b| b.is_ascii_digit())
                || (reference.len() > 1 && reference.starts_with('0')))
        {
            return Err(fail(Caip2Rule::Eip155Reference));
        }
        Ok(Self {
            text: input.to_owned(),
            colon,
        })
    }

    /// Builds the id of an EVM chain from its numeric chain id.
    pub fn eip155(chain_id: u64) -> Self {
        let text = format!("eip155:{chain_id}");
        Self { text, colon: 6 }
    }

    /// The namespace, e.g. `eip155` or `solana`.
    pub fn namespace(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The chain reference within the namespace, e.g. `84532`.
    pub fn reference(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The canonical `namespace:reference` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The numeric chain id when this is an `eip155` chain.
    pub fn evm_chain_id(&self) -> Option<u64> {
        if self.namespace() == "eip155" {
            self.reference().parse().ok()
        } else {
            None
        }
    }

    /// The wildcard pattern of this id's namespace (`eip155:*`), as `/supported` signers use.
    pub fn namespace_pattern(&self) -> String {
        format!("{}:*", self.namespace())
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.text)
    }
}

impl FromStr for ChainId {
    type Err = Caip2Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ChainId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ChainId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids() {
        for id in [
            "eip155:1",
            "eip155:84532",
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
            "near:mainnet",
            "stellar:pubnet",
            "bip122:000000000019d6689c085ae165831e93",
            "abc:x",
            "a-b-c-d1:Ab_-9",
        ] {
            let parsed = ChainId::parse(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(parsed.as_str(), id);
            assert_eq!(parsed.to_string(), id);
            assert_eq!(format!("{}:{}", parsed.namespace(), parsed.reference()), id);
        }
    }

    #[test]
    fn rejects_each_rule_with_its_reason() {
        let cases = [
            ("base-sepolia", Caip2Rule::MissingSeparator),
            ("", Caip2Rule::MissingSeparator),
            ("ab:1", Caip2Rule::NamespaceLength),
            ("abcdefghi:1", Caip2Rule::NamespaceLength),
            (":1", Caip2Rule::NamespaceLength),
            ("EIP155:1", Caip2Rule::NamespaceCharset),
            ("eip_155:1", Caip2Rule::NamespaceCharset),
            ("eip155:", Caip2Rule::ReferenceLength),
            (
                "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d",
                Caip2Rule::ReferenceLength,
            ),
            ("near:main net", Caip2Rule::ReferenceCharset),
            ("near:a:b", Caip2Rule::ReferenceCharset),
            ("eip155:0x14a34", Caip2Rule::Eip155Reference),
            ("eip155:084532", Caip2Rule::Eip155Reference),
        ];
        for (input, rule) in cases {
            let err = ChainId::parse(input).expect_err(input);
            assert_eq!(err.rule, rule, "{input}");
            let message = err.to_string();
            assert!(message.starts_with("CAIP-2 parsing failed"), "{message}");
            assert!(message.contains(&format!("{input:?}")), "{message}");
        }
    }

    #[test]
    fn serde_round_trip_and_rejection() {
        let id: ChainId = serde_json::from_str("\"eip155:8453\"").unwrap();
        assert_eq!(id.evm_chain_id(), Some(8453));
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"eip155:8453\"");
        let err = serde_json::from_str::<ChainId>("\"base\"").unwrap_err();
        assert!(err.to_string().contains("CAIP-2 parsing failed"));
    }

    #[test]
    fn eip155_constructor_matches_parser() {
        assert_eq!(
            ChainId::eip155(84532),
            ChainId::parse("eip155:84532").unwrap()
        );
        assert_eq!(ChainId::eip155(1).namespace_pattern(), "eip155:*");
        assert_eq!(ChainId::parse("near:mainnet").unwrap().evm_chain_id(), None);
    }

    #[test]
    fn long_input_is_truncated_in_error() {
        let input = "x".repeat(10_000);
        let err = ChainId::parse(&input).unwrap_err();
        assert_eq!(err.input.len(), 100);
    }
}

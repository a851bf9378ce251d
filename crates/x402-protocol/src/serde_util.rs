//! Small serde helpers for exact round trips.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Deserializes an optional field so that an explicit `null` stays `Some(Value::Null)`
/// and only a missing field becomes `None`; the re-serialized JSON then equals the input.
pub fn keep_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

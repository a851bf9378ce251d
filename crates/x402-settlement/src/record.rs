//! How a final answer is written into the ledger and read back: stable JSON with the reason
//! as its wire code, so another release (or a damaged row) is read without panicking and an
//! unknown record is refused rather than guessed.

use serde_json::{json, Value};
use x402_protocol::{Reason, Settlement};

/// The settlement as the ledger stores a final answer.
pub fn to_record(settlement: &Settlement) -> String {
    json!({
        "success": settlement.success,
        "reason": settlement.reason.map(Reason::as_str),
        "message": settlement.message,
        "payer": settlement.payer,
        "transaction": settlement.transaction,
    })
    .to_string()
}

/// Reads back [`to_record`]; `None` for text it did not write.
pub fn from_record(text: &str) -> Option<Settlement> {
    let value: Value = serde_json::from_str(text).ok()?;
    let text_field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let reason = match value.get("reason") {
        None | Some(Value::Null) => None,
        Some(code) => Some(Reason::from_code(code.as_str()?)?),
    };
    Some(Settlement {
        success: value.get("success")?.as_bool()?,
        reason,
        message: text_field("message"),
        payer: text_field("payer"),
        transaction: text_field("transaction")?,
        amount: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_survives_the_round_trip() {
        for reason in Reason::ALL {
            let failed = Settlement::failed(*reason, "why", Some("payer".into()), "0xabc");
            assert_eq!(from_record(&to_record(&failed)), Some(failed));
        }
        let settled = Settlement::settled("payer", "0xdef");
        assert_eq!(from_record(&to_record(&settled)), Some(settled));
    }

    #[test]
    fn text_it_did_not_write_is_refused() {
        for text in [
            "",
            "null",
            "{}",
            r#"{"success":true}"#,
            r#"{"success":false,"reason":"no_such_code","transaction":""}"#,
            r#"{"success":"yes","transaction":""}"#,
        ] {
            assert_eq!(from_record(text), None, "{text}");
        }
    }
}

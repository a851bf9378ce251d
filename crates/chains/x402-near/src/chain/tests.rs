use super::{reached, transfer_outcome};
use serde_json::json;

fn view(status: serde_json::Value, inner: serde_json::Value) -> serde_json::Value {
    json!({
        "status": status,
        "receipts_outcome": [
            {"id": "r1", "outcome": {"executor_id": "alice.test", "status": {"SuccessValue": ""}}},
            {"id": "r2", "outcome": {"executor_id": "usdc.test", "status": inner}},
        ],
    })
}

#[test]
fn a_transfer_receipt_that_succeeded_is_a_settlement() {
    let outcome = view(json!({"SuccessValue": ""}), json!({"SuccessValue": ""}));
    assert_eq!(transfer_outcome(&outcome, "usdc.test"), Ok(()));
}

#[test]
fn an_outer_success_with_a_failed_inner_receipt_is_a_failure() {
    // nearcore: a delegate receipt succeeds whatever its inner receipt does, so the
    // transaction's status says SuccessValue while ft_transfer panicked.
    let panicked = json!({"Failure": {"ActionError": {"index": 0, "kind": {"FunctionCallError":
        {"ExecutionError": "Smart contract panicked: The account doesn't have enough balance"}}}}});
    let outcome = view(json!({"SuccessValue": ""}), panicked);
    let error = transfer_outcome(&outcome, "usdc.test").unwrap_err();
    assert!(
        error.contains("usdc.test") && error.contains("enough balance"),
        "{error}"
    );
}

#[test]
fn no_receipt_of_the_token_is_no_settlement() {
    let outcome = view(json!({"SuccessValue": ""}), json!({"SuccessValue": ""}));
    let error = transfer_outcome(&outcome, "other-token.test").unwrap_err();
    assert!(error.contains("other-token.test"), "{error}");
    let failed = json!({"status": {"Failure": {"ActionError": {"index": 0, "kind": "DelegateActionExpired"}}}});
    assert!(transfer_outcome(&failed, "usdc.test")
        .unwrap_err()
        .contains("DelegateActionExpired"));
}

#[test]
fn only_the_configured_finality_ends_the_wait() {
    for level in [
        "NONE",
        "INCLUDED",
        "EXECUTED_OPTIMISTIC",
        "INCLUDED_FINAL",
        "EXECUTED",
    ] {
        assert!(!reached("final", level), "{level}");
    }
    assert!(reached("final", "FINAL"));
    for level in ["NONE", "INCLUDED", "INCLUDED_FINAL"] {
        assert!(!reached("executed", level), "{level}");
    }
    for level in ["EXECUTED_OPTIMISTIC", "EXECUTED", "FINAL"] {
        assert!(reached("executed", level), "{level}");
    }
}

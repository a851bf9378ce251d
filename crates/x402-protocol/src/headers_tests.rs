use super::*;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/headers/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_owned()
}

#[test]
fn the_specifications_examples_decode_and_round_trip() {
    let required = decode_payment_required(&fixture("payment-required.b64")).expect("decodes");
    assert_eq!(required.accepts[0].network.to_string(), "eip155:84532");
    assert_eq!(required.accepts[0].amount.to_string(), "10000");
    let again = decode_payment_required(&encode_payment_required(&required).expect("encodes"));
    assert_eq!(again, Ok(required));

    let payment = decode_payment_signature(&fixture("payment-signature.b64")).expect("decodes");
    assert_eq!(
        payment.accepted.pay_to,
        "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    );
    assert!(payment.payload.contains_key("authorization"));
    let again = decode_payment_signature(&encode_payment_signature(&payment).expect("encodes"));
    assert_eq!(again, Ok(payment));

    let settled = decode_payment_response(&fixture("payment-response-success.b64")).expect("ok");
    assert!(settled.success);
    assert_eq!(settled.transaction.len(), 66);
    let failed = decode_payment_response(&fixture("payment-response-failure.b64")).expect("ok");
    assert_eq!(failed.error_reason.as_deref(), Some("insufficient_funds"));
    let again = decode_payment_response(&encode_payment_response(&failed).expect("encodes"));
    assert_eq!(again, Ok(failed));

    let v1 = decode_x_payment(&fixture("x-payment.b64")).expect("decodes");
    assert_eq!(v1.network, "base-sepolia");
    let again = decode_x_payment(&encode_x_payment(&v1).expect("encodes"));
    assert_eq!(again, Ok(v1));
    for name in [
        "x-payment-response-success.b64",
        "x-payment-response-failure.b64",
    ] {
        let answer = decode_x_payment_response(&fixture(name)).expect("decodes");
        let again = decode_x_payment_response(&encode_x_payment_response(&answer).expect("ok"));
        assert_eq!(again, Ok(answer));
    }

    let body = fixture("v1-402-body.json");
    let required = decode_v1_payment_required_body(body.as_bytes()).expect("decodes");
    assert_eq!(required.accepts[0].max_amount_required.to_string(), "10000");
    let written = encode_v1_payment_required_body(&required).expect("encodes");
    assert_eq!(decode_v1_payment_required_body(&written), Ok(required));
}

#[test]
fn read_payment_header_picks_the_version_the_client_sent() {
    let v2 = fixture("payment-signature.b64");
    let v1 = fixture("x-payment.b64");
    assert!(matches!(
        read_payment_header(Some(&v2), None),
        Ok(Some(PaymentHeader::V2(_)))
    ));
    assert!(matches!(
        read_payment_header(None, Some(&v1)),
        Ok(Some(PaymentHeader::V1(_)))
    ));
    assert_eq!(read_payment_header(None, None), Ok(None));
    assert_eq!(
        read_payment_header(Some(&v2), Some(&v1)),
        Err(HeaderError::TwoPayments)
    );
}

#[test]
fn a_header_of_the_other_version_is_refused_by_name() {
    let v1 = fixture("x-payment.b64");
    let err = decode_payment_signature(&v1).expect_err("v1 in a v2 header");
    assert_eq!(
        err.to_string(),
        "the PAYMENT-SIGNATURE header carries x402Version 1; it takes version 2"
    );
    let v2 = fixture("payment-signature.b64");
    assert!(matches!(
        decode_x_payment(&v2),
        Err(HeaderError::WrongVersion { expected: 1, .. })
    ));
    let none = STANDARD.encode(br#"{"scheme":"exact"}"#);
    assert!(matches!(
        decode_x_payment(&none),
        Err(HeaderError::WrongVersion { found, .. }) if found == "missing"
    ));
}

#[test]
fn malformed_base64_is_named_with_its_position() {
    let good = fixture("payment-signature.b64");
    let url_safe = good.replacen('e', "-", 1);
    let err = decode_payment_signature(&url_safe).expect_err("- is not standard base64");
    let position = good.find('e').expect("an e");
    assert!(
        err.to_string()
            .contains(&format!("byte 0x2d at position {position}")),
        "{err}"
    );
    let unpadded = good.trim_end_matches('=');
    assert!(matches!(
        decode_payment_signature(unpadded),
        Err(HeaderError::NotBase64 { .. })
    ));
    let spaced = format!("{} {}", &good[..8], &good[8..]);
    assert!(matches!(
        decode_payment_signature(&spaced),
        Err(HeaderError::NotBase64 { .. })
    ));
    assert_eq!(
        decode_payment_signature(""),
        Err(HeaderError::Empty {
            part: "PAYMENT-SIGNATURE"
        })
    );
}

#[test]
fn not_json_or_not_an_object_or_too_long_is_refused() {
    let text = STANDARD.encode(b"hello");
    assert!(matches!(
        decode_payment_signature(&text),
        Err(HeaderError::NotJson { .. })
    ));
    let array = STANDARD.encode(b"[1,2]");
    let err = decode_payment_required(&array).expect_err("an array");
    assert!(err.to_string().ends_with("found an array"), "{err}");
    let long = "A".repeat(MAX_ENCODED_BYTES + 4);
    assert!(matches!(
        decode_payment_signature(&long),
        Err(HeaderError::TooLong { len, .. }) if len == MAX_ENCODED_BYTES + 4
    ));
    let body = vec![b' '; MAX_ENCODED_BYTES + 1];
    assert!(matches!(
        decode_v1_payment_required_body(&body),
        Err(HeaderError::TooLong { .. })
    ));
}

#[test]
fn a_wrong_field_is_named_by_its_path() {
    let mut payment: Value = serde_json::from_slice(
        &STANDARD
            .decode(fixture("payment-signature.b64"))
            .expect("b64"),
    )
    .expect("json");
    payment["accepted"]["amount"] = Value::from("ten");
    let header = STANDARD.encode(serde_json::to_vec(&payment).expect("json"));
    let err = decode_payment_signature(&header).expect_err("amount is not a number");
    assert!(
        matches!(&err, HeaderError::Shape { path, .. } if path == "accepted.amount"),
        "{err}"
    );
    payment["accepted"]
        .as_object_mut()
        .expect("object")
        .remove("payTo");
    payment["accepted"]["amount"] = Value::from("10");
    let header = STANDARD.encode(serde_json::to_vec(&payment).expect("json"));
    let err = decode_payment_signature(&header).expect_err("payTo missing");
    assert!(err.to_string().contains("missing field `payTo`"), "{err}");
}

//! What a caller can present and what a key's policy lets through.

use super::*;
use axum::http::HeaderValue;
use x402_protocol::envelope::parse_request_value;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn a_key_comes_as_bearer_or_x_api_key_and_never_two_different_ones() {
    let key = |pairs: &[(&str, &str)]| presented_key(&headers(pairs));
    assert_eq!(key(&[]), Ok(None));
    assert_eq!(
        key(&[("authorization", "Bearer k1")]),
        Ok(Some("k1".into()))
    );
    assert_eq!(key(&[("x-api-key", " k2 ")]), Ok(Some("k2".into())));
    assert_eq!(
        key(&[("authorization", "Bearer k"), ("x-api-key", "k")]),
        Ok(Some("k".into()))
    );
    let unclear = Err(KeyHeaderError::Unclear);
    assert_eq!(
        key(&[("authorization", "Bearer a"), ("x-api-key", "b")]),
        unclear
    );
    assert_eq!(
        key(&[("authorization", "Basic dTpw"), ("x-api-key", "k")]),
        unclear,
        "not a bearer key"
    );
    assert_eq!(key(&[("authorization", "Basic dTpw")]), unclear);
    assert_eq!(
        key(&[("x-api-key", "a"), ("x-api-key", "a")]),
        Err(KeyHeaderError::Repeated)
    );
    assert_eq!(key(&[("authorization", "Bearer ")]), Ok(None));
}

fn payment(network: &str, asset: &str, pay_to: &str) -> Payment {
    let accepted = serde_json::json!({
        "scheme": "exact", "network": network, "amount": "10", "asset": asset,
        "payTo": pay_to, "maxTimeoutSeconds": 60,
    });
    let body = serde_json::json!({
        "x402Version": 2,
        "paymentPayload": {"x402Version": 2, "accepted": accepted, "payload": {}},
        "paymentRequirements": accepted,
    });
    Payment::from_request(&parse_request_value(body).unwrap()).unwrap()
}

#[test]
fn a_policy_lets_through_its_networks_assets_and_payees_only() {
    let policy = KeyPolicy {
        networks: vec!["base-sepolia".into()],
        assets: vec!["0xAbC".into()],
        pay_to: vec!["0xPaYeE".into()],
        rate_limit_per_minute: 0,
    };
    let key = CallerKey::new("shop", policy).unwrap();
    assert!(
        key.admits(&payment("eip155:84532", "0xabc", "0xpayee"))
            .is_ok(),
        "0x in any case"
    );
    let (reason, message) = key
        .admits(&payment("eip155:8453", "0xabc", "0xpayee"))
        .unwrap_err();
    assert_eq!(reason, Reason::InvalidNetwork);
    assert!(
        message.contains("shop") && message.contains("eip155:8453"),
        "{message}"
    );
    let (reason, _) = key
        .admits(&payment("eip155:84532", "0xother", "0xpayee"))
        .unwrap_err();
    assert_eq!(reason, Reason::InvalidPaymentRequirements);
    let (_, message) = key
        .admits(&payment("eip155:84532", "0xabc", "0xelse"))
        .unwrap_err();
    assert!(message.contains("pay to"), "{message}");
    let open = CallerKey::new("any", KeyPolicy::default()).unwrap();
    assert!(open.admits(&payment("eip155:8453", "0x1", "0x2")).is_ok());
    assert!(CallerKey::new(
        "bad",
        KeyPolicy {
            networks: vec!["atlantis".into()],
            ..KeyPolicy::default()
        }
    )
    .is_err());
}

#[test]
fn keys_are_hashed_ids_are_plain_and_fresh_keys_differ() {
    assert_eq!(
        hash_key("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let (a, b) = (new_key().unwrap(), new_key().unwrap());
    assert_ne!(a, b);
    assert!(a.starts_with("x402_") && a.len() == 69, "{a}");
    for good in ["shop", "shop-eu.1", "A_b"] {
        assert!(valid_id(good), "{good}");
    }
    for bad in ["", "a b", "x/y", "é", &"a".repeat(65)] {
        assert!(!valid_id(bad), "{bad}");
    }
}

#[test]
fn the_keys_file_is_checked_before_anything_is_stored() {
    let dir = std::env::temp_dir().join(format!("x402-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.toml");
    let hash = hash_key("secret-key");
    let write_and_read = |text: &str| {
        std::fs::write(&file, text).unwrap();
        read_keys_file(&file)
    };
    let keys = write_and_read(&format!(
        "[[keys]]\nid = \"shop\"\nsha256 = \"{}\"\nnetworks = [\"base-sepolia\"]\nrate_limit_per_minute = 5\n",
        hash.to_uppercase()
    ))
    .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key_hash, hash, "stored lower-case");
    assert_eq!(keys[0].source, "file");
    let policy: KeyPolicy = serde_json::from_str(&keys[0].policy).unwrap();
    assert_eq!(policy.rate_limit_per_minute, 5);
    for bad in [
        format!("[[keys]]\nid = \"a b\"\nsha256 = \"{hash}\"\n"),
        "[[keys]]\nid = \"short\"\nsha256 = \"abc\"\n".to_owned(),
        format!("[[keys]]\nid = \"x\"\nsha256 = \"{hash}\"\nnetworks = [\"atlantis\"]\n"),
        format!("[[keys]]\nid = \"x\"\nsha256 = \"{hash}\"\nkey = \"plain text\"\n"),
        format!("[[keys]]\nid = \"x\"\nsha256 = \"{hash}\"\n[[keys]]\nid = \"x\"\nsha256 = \"{hash}\"\n"),
    ] {
        assert!(write_and_read(&bad).is_err(), "{bad}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

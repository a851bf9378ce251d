//! CAIP-2 ids and network names as they arrive in requests and configuration: parsing
//! never panics, a parsed id prints as the text it came from and parses back to itself,
//! and the registry lookups agree with the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use x402_protocol::networks::{by_chain_id, by_v1_name, family_of, resolve_network};
use x402_protocol::ChainId;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = ChainId::parse(text) {
        assert_eq!(id.to_string(), text, "an id prints as it was written");
        assert_eq!(ChainId::parse(&id.to_string()).ok(), Some(id.clone()));
        assert_eq!(
            format!("{}:{}", id.namespace(), id.reference()),
            text,
            "namespace and reference are the two halves"
        );
        let _ = family_of(&id);
        if let Some(known) = by_chain_id(&id) {
            assert_eq!(known.chain_id(), id);
        }
    } else if let Err(error) = ChainId::parse(text) {
        assert!(error.to_string().starts_with("CAIP-2 parsing failed"));
    }
    if let Some(known) = by_v1_name(text) {
        assert_eq!(resolve_network(text).ok(), Some(known.chain_id()));
    }
});

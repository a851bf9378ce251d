//! Settlement answers as the ledger stores them (text another release, or a damaged row,
//! may have written): reading never panics, and what is read writes back to a record that
//! reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use x402_settlement::record::{from_record, to_record};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(settlement) = from_record(text) {
        let again = from_record(&to_record(&settlement));
        assert_eq!(again, Some(settlement));
    }
});

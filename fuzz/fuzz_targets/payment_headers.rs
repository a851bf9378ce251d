//! The x402 HTTP headers and the v1 402 body, as a client or a resource server sends them:
//! reading never panics, and whatever is read writes back to a value that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use x402_protocol::headers::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = decode_v1_payment_required_body(data) {
        let written = encode_v1_payment_required_body(&body).expect("a read body writes");
        assert_eq!(decode_v1_payment_required_body(&written), Ok(body));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The input read directly, and the input's bytes base64-encoded (so the JSON layer is
    // reached far more often than by a random text being valid base64).
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data);
    for value in [text, encoded.as_str()] {
        if let Ok(v) = decode_payment_required(value) {
            let again = decode_payment_required(&encode_payment_required(&v).expect("writes"));
            assert_eq!(again, Ok(v));
        }
        if let Ok(v) = decode_payment_signature(value) {
            let again = decode_payment_signature(&encode_payment_signature(&v).expect("writes"));
            assert_eq!(again, Ok(v));
        }
        if let Ok(v) = decode_payment_response(value) {
            let again = decode_payment_response(&encode_payment_response(&v).expect("writes"));
            assert_eq!(again, Ok(v));
        }
        if let Ok(v) = decode_x_payment(value) {
            let again = decode_x_payment(&encode_x_payment(&v).expect("writes"));
            assert_eq!(again, Ok(v));
        }
        if let Ok(v) = decode_x_payment_response(value) {
            let again = decode_x_payment_response(&encode_x_payment_response(&v).expect("writes"));
            assert_eq!(again, Ok(v));
        }
        let _ = read_payment_header(Some(value), None);
        let _ = read_payment_header(None, Some(value));
    }
});

//! The activation record (profile §7): `ActivationRecord::from_json`, `to_json`, `verify`.
//!
//! Properties, on arbitrary UTF-8 text: `from_json` never panics; on Ok the schema is 1 and
//! `from_json(&record.to_json())` equals the record (and `to_json` is then a fixed point).
//! `verify` against the fixed server key never panics, and is Ok only for a datagram the fixed
//! server signed (the seeds' records): then it is one of the two fixture exchanges' answers,
//! and every record field equals the signed response's.
#![no_main]

use lap_proto::ActivationRecord;
use lap_proto_fuzz::{attempts, server_keys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(record) = ActivationRecord::from_json(text) else {
        return;
    };
    assert_eq!(record.schema, 1);
    let json = record.to_json();
    let again = ActivationRecord::from_json(&json).expect("to_json output reads back");
    assert_eq!(again, record, "record changed through to_json: {json}");
    assert_eq!(again.to_json(), json);

    let keys = server_keys();
    let Ok(verified) = record.verify(record.sku, keys.public().ed25519_bytes()) else {
        return;
    };
    let response = &verified.response;
    assert_eq!(response.sku_id, record.sku);
    assert_eq!(response.client_id, record.client_id);
    assert_eq!(response.license_id, record.license_id);
    assert_eq!(response.server_time, record.server_time);
    assert_eq!(
        lap_proto::ServerData::parse(&response.server_data).as_ref(),
        Ok(&verified.server_data)
    );
    // The fuzzer cannot sign: whatever verified is an answer the fixed server made for one of
    // the fixture exchanges.
    let datagram = decode_base64(&record.response);
    let opened = attempts()
        .iter()
        .find_map(|attempt| attempt.open(&datagram).ok())
        .expect("a verified record holds a fixture answer");
    assert_eq!(&opened.response, response);
    // A wrong expected SKU is refused.
    let mut other_sku = *record.sku.as_bytes();
    other_sku[0] ^= 1;
    assert!(
        record
            .verify(
                lap_proto::Uuid::from_bytes(other_sku),
                keys.public().ed25519_bytes()
            )
            .is_err()
    );
});

/// Standard base64 with padding, written out so the target needs no base64 crate.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("verify accepted a non-base64 response"),
        }
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0_u32, 0);
    for &c in bytes {
        acc = (acc << 6 | value(c)) & 0x3fff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).expect("byte"));
        }
    }
    out
}

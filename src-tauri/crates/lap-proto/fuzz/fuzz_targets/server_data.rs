//! `ServerData::parse` / `encode` (profile TLV v1, §5) on arbitrary bytes.
//!
//! Properties: `parse` is Ok exactly when the independent model accepts the bytes; on Ok the
//! record walk (type, u16 LE length, value) consumes the input exactly, every field equals the
//! model's, `encode()` succeeds, re-parses to the same value and is canonical (encoding again
//! gives the same bytes, and the same bytes as the walk's known records in type order with
//! vendor records kept in order), and `renew_at` follows §5 with its clamps.
#![no_main]

use lap_proto::server_data::{DEFAULT_RENEW_SECS, MIN_RENEW_SECS};
use lap_proto::time::MAX_TIME;
use lap_proto::{LicenseKind, ServerData};
use lap_proto_fuzz::{hex, tlv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = ServerData::parse(data);
    let model = tlv::model(data);
    assert_eq!(
        parsed.is_ok(),
        model.is_some(),
        "model {model:?} vs parse {parsed:?} for {}",
        hex(data)
    );
    let (Ok(parsed), Some(model)) = (parsed, model) else {
        return;
    };

    // The walk consumes the input exactly: record lengths add up to the input length.
    let records = tlv::walk(data).expect("a parsed input walks");
    let consumed: usize = records.iter().map(|r| 3 + r.value.len()).sum();
    assert_eq!(consumed, data.len());

    assert_eq!(parsed.not_after, model.not_after);
    assert_eq!(parsed.renew_after, model.renew_after);
    assert_eq!(parsed.kind.map(LicenseKind::to_byte), model.kind);
    assert_eq!(parsed.in_compliance, model.in_compliance);
    assert_eq!(parsed.features, model.features);
    assert_eq!(parsed.notice, model.notice);
    assert_eq!(
        parsed.asset_key.as_ref().map(|k| k.to_vec()),
        model.asset_key
    );
    assert_eq!(parsed.released, model.released);
    assert_eq!(parsed.seats, model.seats);
    assert_eq!(
        parsed
            .delegation
            .as_ref()
            .map(|d| d.to_bytes().expect("a read delegation encodes").to_vec()),
        model.delegation
    );
    assert_eq!(parsed.duplicate, model.duplicate);
    assert_eq!(parsed.vendor_records, model.vendor);

    let encoded = parsed.encode().expect("a parsed ServerData encodes");
    let reparsed = ServerData::parse(&encoded).expect("an encoded ServerData parses");
    assert_eq!(reparsed, parsed);
    assert_eq!(
        reparsed.encode().expect("encodes again"),
        encoded,
        "encoding is not canonical"
    );

    // Canonical form, built from the walk: known records 0x01..=0x0B in type order (Features
    // only when it names something), reserved records dropped, vendor records in input order.
    let mut canonical = Vec::new();
    for t in 1..=0x0b_u8 {
        for r in records.iter().filter(|r| r.record_type == t) {
            if t == 5 && r.value.is_empty() {
                continue;
            }
            canonical.push(t);
            canonical.extend_from_slice(&u16::try_from(r.value.len()).expect("u16").to_le_bytes());
            canonical.extend_from_slice(r.value);
        }
    }
    for r in records.iter().filter(|r| r.record_type >= 0x80) {
        canonical.push(r.record_type);
        canonical.extend_from_slice(&u16::try_from(r.value.len()).expect("u16").to_le_bytes());
        canonical.extend_from_slice(r.value);
    }
    assert_eq!(encoded, canonical, "encode is not the canonical form");

    // §5 renewal: RenewAfter (brought back to NotAfter when past it), else halfway from
    // ServerTime to NotAfter, else 30 days later; never sooner than MIN_RENEW_SECS after
    // ServerTime, so no answer is due again at once.
    for server_time in [0, 1_750_000_000, MAX_TIME - 1, MAX_TIME] {
        let renew = parsed.renew_at(server_time);
        let soonest = server_time + MIN_RENEW_SECS;
        assert!(renew >= soonest, "renewal {renew} before {soonest}");
        let asked = match (model.renew_after, model.not_after) {
            (Some(r), Some(end)) => r.min(end),
            (Some(r), None) => r,
            (None, Some(end)) if end >= server_time => server_time + (end - server_time) / 2,
            (None, Some(_)) => server_time,
            (None, None) => server_time + DEFAULT_RENEW_SECS,
        };
        assert_eq!(renew, asked.max(soonest));
    }
});

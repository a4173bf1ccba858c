//! Client side of a response: `PendingExchange::open` (and `open_any`) against two fixed
//! exchanges made once (ClientId = base id with a 330-byte request; ClientId = add-on id with
//! a 234-byte request).
//!
//! Input: a control byte, then the body.
//! - control bit 0 clear: the body is a response *plaintext*; bit 1 picks the exchange. The
//!   server seals it with `ResponseSealer::seal_raw` (signs and encrypts any bytes) and the
//!   client opens it. Ok exactly when the profile's rules, computed here independently, hold
//!   (56 ≤ len ≤ request datagram − 80, Version 2, Size = len, ClientId and SKUId echoed,
//!   LicenseId not nil); on Ok the fields are the plaintext's bytes, `ResponseSealer::seal`
//!   of those fields gives the same datagram, and the activation record verifies exactly when
//!   the ServerData parses. On Err the error is never an authentication failure. The other
//!   exchange never opens the datagram.
//! - control bit 0 set: the body is a raw response datagram. It opens on at most one exchange,
//!   and only when it is byte for byte what the server would send for the plaintext it holds
//!   (seeds hold such datagrams, so their mutations are tampering tests); otherwise the error is
//!   decided by its length alone, else a bad signature. `open_any` agrees.
#![no_main]

use lap_proto::{ActivationRecord, AuthStage, ProtoError, ServerData, open_any};
use lap_proto_fuzz::{Exchange, attempts, exchanges, hex, rules, server_keys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let fx = exchanges();
    if control & 1 == 1 {
        raw_datagram(body);
    } else if control & 2 == 0 {
        sealed_plaintext(&fx.base, &fx.addon, body);
    } else {
        sealed_plaintext(&fx.addon, &fx.base, body);
    }
});

/// The error a datagram must get from an exchange it does not open, by length first.
fn assert_refused_by_length_or(
    x: &Exchange,
    datagram: &[u8],
    result: &Result<lap_proto::Activation, ProtoError>,
    stage: AuthStage,
) {
    let len = datagram.len();
    let ok = match result {
        Ok(_) => false,
        Err(ProtoError::TooShort { .. }) => {
            len < rules::RESPONSE_WRAP + rules::RESPONSE_PLAINTEXT_MIN
        }
        Err(ProtoError::TooLong { .. }) => {
            len >= rules::RESPONSE_WRAP + rules::RESPONSE_PLAINTEXT_MIN
                && len > x.request_datagram.len()
        }
        Err(ProtoError::Authentication(s)) => {
            *s == stage
                && len >= rules::RESPONSE_WRAP + rules::RESPONSE_PLAINTEXT_MIN
                && len <= x.request_datagram.len()
        }
        Err(_) => false,
    };
    assert!(
        ok,
        "{len}-byte datagram (request {}), expected {stage:?} or a length error: {result:?}; {}",
        x.request_datagram.len(),
        hex(datagram)
    );
}

fn raw_datagram(datagram: &[u8]) {
    let fx = exchanges();
    let keys = server_keys();
    let both = [&fx.base, &fx.addon];
    let results = both.map(|x| x.pending.open(datagram));
    let opened: Vec<usize> = (0..2).filter(|&i| results[i].is_ok()).collect();
    assert!(opened.len() <= 1, "one datagram opened two exchanges");

    for i in 0..2 {
        let x = both[i];
        match &results[i] {
            Ok(activation) => {
                // Only a datagram the server itself made verifies: re-sealing what it says
                // gives it back exactly (Ed25519 and the AEAD are deterministic).
                let plaintext = activation
                    .response
                    .encode()
                    .expect("opened response encodes");
                assert_eq!(
                    x.sealer.seal_raw(keys, &plaintext),
                    datagram,
                    "a datagram the server did not make verified"
                );
                assert_eq!(activation.datagram, datagram);
            }
            // Signed by the server for the other exchange: the signature holds, the tag not.
            Err(_) if opened == [1 - i] => {
                assert_refused_by_length_or(x, datagram, &results[i], AuthStage::Tag);
            }
            // Nothing else is signed: a forged or tampered datagram fails the signature.
            Err(_) => {
                assert_refused_by_length_or(x, datagram, &results[i], AuthStage::Signature);
            }
        }
    }

    let any = open_any(attempts(), datagram);
    match (&any, opened.first()) {
        (Ok((index, activation)), Some(&i)) => {
            assert_eq!(*index, i);
            assert_eq!(
                activation.response,
                results[i].as_ref().expect("opened").response
            );
        }
        (Err(_), None) => {}
        _ => panic!("open_any disagrees with open: {any:?} vs {results:?}"),
    }
}

fn sealed_plaintext(this: &Exchange, other: &Exchange, p: &[u8]) {
    let keys = server_keys();
    let datagram = this.sealer.seal_raw(keys, p);
    assert_eq!(datagram.len(), p.len() + rules::RESPONSE_WRAP);

    let client_id = *this.request.client_id().as_bytes();
    let sku = *this.request.sku_id.as_bytes();
    let expected_ok = rules::response_plaintext_ok(p, this.request_datagram.len(), client_id, sku);
    let result = this.pending.open(&datagram);
    assert_eq!(
        result.is_ok(),
        expected_ok,
        "rules say {expected_ok} for {} (request {} bytes): {result:?}",
        hex(p),
        this.request_datagram.len()
    );

    match &result {
        Ok(activation) => {
            let r = &activation.response;
            assert_eq!(r.server_time, rules::le40(p, 3));
            assert_eq!(r.client_id.as_bytes(), &rules::id(p, 8));
            assert_eq!(r.sku_id.as_bytes(), &rules::id(p, 24));
            assert_eq!(r.license_id.as_bytes(), &rules::id(p, 40));
            assert_eq!(&r.server_data[..], &p[56..]);
            assert_eq!(&r.encode().expect("opened response encodes")[..], p);
            assert_eq!(activation.datagram, datagram);

            // The normal sealing path makes the very same datagram.
            let again = this
                .sealer
                .seal(keys, r.server_time, r.license_id, &r.server_data)
                .expect("what opened seals");
            assert_eq!(again, datagram);

            // Profile §7: the record verifies exactly when the ServerData parses.
            let record = ActivationRecord::new("fuzz", activation);
            let verified = record.verify(this.request.sku_id, keys.public().ed25519_bytes());
            match (ServerData::parse(&r.server_data), verified) {
                (Ok(data), Ok(v)) => {
                    assert_eq!(v.server_data, data);
                    assert_eq!(&v.response, r);
                }
                (Err(e), Err(ProtoError::ServerData(f))) => assert_eq!(e, f),
                (parsed, verified) => {
                    panic!("ServerData {parsed:?} but record verification {verified:?}")
                }
            }
            let json = record.to_json();
            assert_eq!(
                ActivationRecord::from_json(&json).expect("record round-trips"),
                record
            );
        }
        Err(e) => assert!(
            !matches!(e, ProtoError::Authentication(_)),
            "a response the server sealed failed authentication: {e:?}"
        ),
    }

    // The other exchange's key never opens it (its signature holds, its tag does not).
    let result = other.pending.open(&datagram);
    assert_refused_by_length_or(other, &datagram, &result, AuthStage::Tag);
}

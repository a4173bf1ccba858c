//! Server side of a request: `open_request` and `Request::decode`/`encode`.
//!
//! Input: a control byte, then the body.
//! - control bit 0 set: the body is a raw request datagram given to `open_request` with the
//!   fixed server keys. Length outside 137..=1200 ⇒ TooShort/TooLong; an ephemeral key of small
//!   order ⇒ Authentication(ZeroSharedSecret); anything else the fuzzer makes ⇒
//!   Authentication(Tag) (it cannot forge the tag), unless the body is a genuine datagram
//!   (seeds hold some): then the request re-encodes to exactly `len − 48` bytes, satisfies the
//!   plaintext rules and the ClientId rule, and the sealer echoes that ClientId.
//! - control bit 0 clear: the body is a request *plaintext*. `Request::decode` is Ok exactly
//!   when the profile's rules (computed here independently) hold; on Ok `encode()` gives back
//!   the input byte for byte and the fields are the bytes at their offsets. End to end (always
//!   for a valid plaintext, and for an invalid one when control bit 1 is set, since the two
//!   X25519 operations cost more than everything else): the plaintext sealed as a (possibly
//!   hostile) client would (`seal_raw_request`) opens with `open_request` exactly when the
//!   rules hold, never failing authentication otherwise; on Ok `seal_request` of the decoded
//!   request makes the very same datagram, the server gets the same request back, and its
//!   largest allowed answer opens on the client.
#![no_main]

use lap_proto::{
    AuthStage, EphemeralSecret, ProtoError, Request, Uuid, open_request, seal_raw_request,
    seal_request,
};
use lap_proto_fuzz::{REQUEST_EPHEMERAL, hex, rules, server_keys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    if control & 1 == 1 {
        raw_datagram(body);
    } else {
        plaintext(body, control & 2 != 0);
    }
});

fn raw_datagram(datagram: &[u8]) {
    let result = open_request(server_keys(), datagram);
    let len = datagram.len();
    if len < rules::REQUEST_PLAINTEXT_MIN + rules::REQUEST_WRAP {
        assert!(
            matches!(result, Err(ProtoError::TooShort { .. })),
            "{len}-byte datagram: {result:?}"
        );
        return;
    }
    if len > rules::DATAGRAM_MAX {
        assert!(
            matches!(result, Err(ProtoError::TooLong { .. })),
            "{len}-byte datagram: {result:?}"
        );
        return;
    }
    let ephemeral: [u8; 32] = datagram[..32].try_into().expect("32 bytes");
    if rules::low_order_points().contains(&ephemeral) {
        assert!(
            matches!(
                result,
                Err(ProtoError::Authentication(AuthStage::ZeroSharedSecret))
            ),
            "small-order ephemeral key {}: {result:?}",
            hex(&ephemeral)
        );
        return;
    }
    match result {
        Ok((request, sealer)) => {
            let plaintext = request.encode().expect("an opened request re-encodes");
            assert_eq!(plaintext.len(), len - rules::REQUEST_WRAP);
            assert!(rules::request_plaintext_ok(&plaintext), "{request:?}");
            let client_id = rules::request_client_id(&plaintext);
            assert_eq!(request.client_id().as_bytes(), &client_id);
            assert_eq!(sealer.client_id(), request.client_id());
            assert_eq!(
                sealer.max_server_data_len(),
                len - rules::RESPONSE_WRAP - rules::RESPONSE_PLAINTEXT_MIN
            );
        }
        // A datagram that authenticates but holds a bad plaintext needs the c2s key: a genuine
        // client never sends one, and the fuzzer cannot forge one.
        Err(e) => assert!(
            matches!(e, ProtoError::Authentication(AuthStage::Tag)),
            "{len}-byte datagram {}: {e:?}",
            hex(datagram)
        ),
    }
}

fn plaintext(p: &[u8], end_to_end: bool) {
    let expected_ok = rules::request_plaintext_ok(p);
    let decoded = Request::decode(p);
    assert_eq!(
        decoded.is_ok(),
        expected_ok,
        "rules say {expected_ok} for {}: {decoded:?}",
        hex(p)
    );
    if !expected_ok && !end_to_end {
        return;
    }

    // End to end: the bytes sealed under a fixed ephemeral key, opened by the server.
    let keys = server_keys();
    let ephemeral = EphemeralSecret::from_bytes(REQUEST_EPHEMERAL);
    let (datagram, _) = seal_raw_request(keys.public(), p, &ephemeral, Uuid::nil(), Uuid::nil())
        .expect("the fixed ephemeral key is not of small order");
    assert_eq!(datagram.len(), p.len() + rules::REQUEST_WRAP);
    assert_eq!(datagram[..32], ephemeral.public_key());
    let opened = open_request(keys, &datagram);
    assert_eq!(
        opened.is_ok(),
        expected_ok,
        "rules say {expected_ok} for sealed {}: {opened:?}",
        hex(p)
    );
    let (opened, sealer) = match (decoded, opened) {
        (Ok(request), Ok((opened, sealer))) => {
            assert_eq!(opened, request);
            (request, sealer)
        }
        (_, Err(e)) => {
            assert!(
                !matches!(e, ProtoError::Authentication(_)),
                "a properly sealed request failed authentication: {e:?}"
            );
            return;
        }
        (Err(_), Ok(_)) => unreachable!("both agree with the rules"),
    };
    let request = opened;

    // Exact codec: fields at their offsets, and encode gives the input back.
    assert_eq!(request.client_time, rules::le40(p, 3));
    assert_eq!(request.client_base_id.as_bytes(), &rules::id(p, 8));
    assert_eq!(request.client_addon_id.as_bytes(), &rules::id(p, 24));
    assert_eq!(request.sku_id.as_bytes(), &rules::id(p, 40));
    assert_eq!(request.current_license_id.as_bytes(), &rules::id(p, 56));
    assert_eq!(&request.client_seed[..], &p[88..]);
    assert_eq!(request.encoded_len(), p.len());
    let encoded = request.encode().expect("a decoded request encodes");
    assert_eq!(&encoded[..], p, "encode(decode(p)) != p");
    let client_id = Uuid::from_bytes(rules::request_client_id(p));
    assert_eq!(request.client_id(), client_id);
    assert_eq!(sealer.client_id(), client_id);

    // A real client sealing the decoded request sends the very same datagram.
    let (sealed, pending) =
        seal_request(keys.public(), &request, &ephemeral).expect("a valid request seals");
    assert_eq!(sealed, datagram);
    assert_eq!(pending.request_datagram_len(), datagram.len());
    let room = sealer.max_server_data_len();
    assert_eq!(
        room,
        datagram.len() - rules::RESPONSE_WRAP - rules::RESPONSE_PLAINTEXT_MIN
    );

    // The server's answer, as large as allowed, opens on the client; one byte more is refused.
    let server_data: Vec<u8> = p.iter().copied().cycle().take(room).collect();
    let license_id = request.client_base_id;
    let response = sealer
        .seal(keys, request.client_time, license_id, &server_data)
        .expect("a response within the room seals");
    assert_eq!(
        response.len(),
        datagram.len(),
        "the largest answer fills the request"
    );
    let activation = pending.open(&response).expect("the server's answer opens");
    assert_eq!(activation.response.client_id, client_id);
    assert_eq!(activation.response.sku_id, request.sku_id);
    assert_eq!(activation.response.license_id, license_id);
    assert_eq!(activation.response.server_time, request.client_time);
    assert_eq!(&activation.response.server_data[..], &server_data[..]);
    let too_big: Vec<u8> = vec![0; room + 1];
    assert!(matches!(
        sealer.seal(keys, request.client_time, license_id, &too_big),
        Err(ProtoError::TooLong { .. })
    ));
}

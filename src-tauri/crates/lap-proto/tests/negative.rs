//! One negative test for every rule of profile §1: each must make the datagram fail, and
//! fail for the right reason.

mod common;

use common::{ephemeral, load_json, sample_request, server_keys};
use lap_proto::wire::{MAX_DATAGRAM_LEN, MAX_SEED_LEN, REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN};
use lap_proto::{
    AuthStage, EphemeralSecret, Field, PendingExchange, ProtoError, Request, ResponseSealer,
    ServerPublicKeys, ServerSecretKeys, Uuid, open_any, open_request, seal_raw_request,
    seal_request,
};
use zeroize::Zeroizing;

const LICENSE: Uuid = Uuid::from_u128(0x11c);

fn exchange() -> (ServerSecretKeys, Vec<u8>, PendingExchange, ResponseSealer) {
    let keys = server_keys();
    let (datagram, pending) =
        seal_request(keys.public(), &sample_request(), &ephemeral(1)).expect("seals");
    let (_, sealer) = open_request(&keys, &datagram).expect("opens");
    (keys, datagram, pending, sealer)
}

/// A valid response plaintext for the sample exchange, to be damaged by each test.
fn response_plaintext() -> Vec<u8> {
    let mut p = vec![2, 0, 0, 0x40, 0x21, 0xfd, 0x6a, 0];
    p.extend_from_slice(sample_request().client_id().as_bytes());
    p.extend_from_slice(sample_request().sku_id.as_bytes());
    p.extend_from_slice(LICENSE.as_bytes());
    p.extend_from_slice(&[0x03, 1, 0, 1]);
    let len = u16::try_from(p.len()).expect("small");
    p[1..3].copy_from_slice(&len.to_le_bytes());
    p
}

fn request_plaintext() -> Vec<u8> {
    sample_request().encode().expect("encodes").to_vec()
}

fn seal_request_plaintext(plaintext: &[u8]) -> Vec<u8> {
    let keys = server_keys();
    let (datagram, _) = seal_raw_request(
        keys.public(),
        plaintext,
        &ephemeral(3),
        Uuid::nil(),
        Uuid::nil(),
    )
    .expect("seals raw");
    datagram
}

#[test]
fn the_unmodified_exchange_succeeds() {
    let (keys, _, pending, sealer) = exchange();
    let answer = sealer.seal_raw(&keys, &response_plaintext());
    let activation = pending.open(&answer).expect("valid answer");
    assert_eq!(activation.response.license_id, LICENSE);
    assert_eq!(activation.response.server_time, 0x6a_fd21_4000 >> 8);
}

#[test]
fn a_flipped_bit_anywhere_in_a_request_is_rejected() {
    let (keys, datagram, _, _) = exchange();
    for i in 0..datagram.len() {
        let mut damaged = datagram.clone();
        damaged[i] ^= 1 << (i % 8);
        let err = open_request(&keys, &damaged).expect_err("damaged request");
        assert!(
            matches!(err, ProtoError::Authentication(_)),
            "byte {i}: {err}"
        );
    }
}

#[test]
fn a_flipped_bit_anywhere_in_a_response_is_rejected() {
    let (keys, _, pending, sealer) = exchange();
    let answer = sealer.seal_raw(&keys, &response_plaintext());
    for i in 0..answer.len() {
        let mut damaged = answer.clone();
        damaged[i] ^= 1 << (i % 8);
        let err = pending.open(&damaged).expect_err("damaged response");
        assert!(
            matches!(err, ProtoError::Authentication(AuthStage::Signature)),
            "byte {i}: {err}"
        );
    }
}

#[test]
fn a_response_signed_by_another_server_is_rejected() {
    let (_, _, pending, sealer) = exchange();
    let impostor = ServerSecretKeys::from_bytes([0x11; 32], &[0x99; 32]);
    let answer = sealer.seal_raw(&impostor, &response_plaintext());
    assert!(matches!(
        pending.open(&answer),
        Err(ProtoError::Authentication(AuthStage::Signature))
    ));
}

#[test]
fn validly_signed_garbage_fails_the_tag() {
    let (keys, _, pending, sealer) = exchange();
    let other_keys = ServerSecretKeys::from_bytes([0x11; 32], &[0x22; 32]);
    // Same signer, but encrypted under another exchange's key: the signature is good, the
    // ciphertext is not ours.
    let (other_datagram, _) =
        seal_request(other_keys.public(), &sample_request(), &ephemeral(9)).expect("seals");
    let (_, other_sealer) = open_request(&keys, &other_datagram).expect("opens");
    let answer = other_sealer.seal_raw(&keys, &response_plaintext());
    assert!(matches!(
        pending.open(&answer),
        Err(ProtoError::Authentication(AuthStage::Tag))
    ));
    drop(sealer);
}

#[test]
fn every_wrong_size_field_is_rejected() {
    let (keys, _, pending, sealer) = exchange();
    let good = request_plaintext();
    let good_response = response_plaintext();
    for size in 0..=u16::MAX {
        if usize::from(size) != good.len() {
            let mut p = good.clone();
            p[1..3].copy_from_slice(&size.to_le_bytes());
            let err = Request::decode(&p).expect_err("wrong request Size");
            assert!(matches!(err, ProtoError::Size { .. }), "{size}: {err}");
        }
        if usize::from(size) != good_response.len() {
            let mut p = good_response.clone();
            p[1..3].copy_from_slice(&size.to_le_bytes());
            let err = lap_proto::Response::decode(&p).expect_err("wrong response Size");
            assert!(matches!(err, ProtoError::Size { .. }), "{size}: {err}");
        }
    }
    // And through the full datagram paths, a few representative wrong sizes.
    for size in [0u16, 1, 88, 89, 281, 283, 1152, u16::MAX] {
        let mut p = good.clone();
        p[1..3].copy_from_slice(&size.to_le_bytes());
        assert!(matches!(
            open_request(&keys, &seal_request_plaintext(&p)),
            Err(ProtoError::Size { .. })
        ));
        let mut r = good_response.clone();
        r[1..3].copy_from_slice(&size.to_le_bytes());
        assert!(matches!(
            pending.open(&sealer.seal_raw(&keys, &r)),
            Err(ProtoError::Size { .. })
        ));
    }
}

#[test]
fn versions_other_than_2_are_rejected() {
    let (keys, _, pending, sealer) = exchange();
    for version in [0u8, 1, 3, 255] {
        let mut p = request_plaintext();
        p[0] = version;
        let err = open_request(&keys, &seal_request_plaintext(&p)).expect_err("bad version");
        assert!(
            matches!(err, ProtoError::Version(v) if v == version),
            "{err}"
        );
        let mut r = response_plaintext();
        r[0] = version;
        let err = pending
            .open(&sealer.seal_raw(&keys, &r))
            .expect_err("bad version");
        assert!(
            matches!(err, ProtoError::Version(v) if v == version),
            "{err}"
        );
    }
}

#[test]
fn any_non_zero_reserved_byte_is_rejected() {
    let keys = server_keys();
    for i in 72..88 {
        let mut p = request_plaintext();
        p[i] = 0x80;
        let err = open_request(&keys, &seal_request_plaintext(&p)).expect_err("reserved");
        assert!(
            matches!(err, ProtoError::ReservedNotZero),
            "byte {i}: {err}"
        );
    }
}

#[test]
fn nil_ids_are_rejected() {
    let keys = server_keys();
    for (offset, field) in [(8, Field::ClientBaseId), (40, Field::SkuId)] {
        let mut p = request_plaintext();
        p[offset..offset + 16].fill(0);
        let err = open_request(&keys, &seal_request_plaintext(&p)).expect_err("nil id");
        assert!(matches!(err, ProtoError::NilId(f) if f == field), "{err}");
    }
    let (keys, _, pending, sealer) = exchange();
    let mut r = response_plaintext();
    r[40..56].fill(0);
    assert!(matches!(
        pending.open(&sealer.seal_raw(&keys, &r)),
        Err(ProtoError::NilId(Field::LicenseId))
    ));
}

#[test]
fn a_wrong_client_id_or_sku_echo_is_rejected() {
    let (keys, _, pending, sealer) = exchange();
    let mut r = response_plaintext();
    r[8] ^= 0x01;
    assert!(matches!(
        pending.open(&sealer.seal_raw(&keys, &r)),
        Err(ProtoError::ClientIdMismatch)
    ));
    let mut r = response_plaintext();
    r[24] ^= 0x01;
    assert!(matches!(
        pending.open(&sealer.seal_raw(&keys, &r)),
        Err(ProtoError::SkuMismatch)
    ));
}

#[test]
fn the_client_id_rule_follows_the_add_on_id() {
    let keys = server_keys();
    let mut request = sample_request();
    request.client_addon_id = Uuid::from_u128(0xadd);
    let (datagram, pending) = seal_request(keys.public(), &request, &ephemeral(4)).expect("seals");
    let (_, sealer) = open_request(&keys, &datagram).expect("opens");
    assert_eq!(sealer.client_id(), Uuid::from_u128(0xadd));
    // An answer echoing the base id instead of the add-on id is refused.
    let mut r = response_plaintext();
    r[24..40].copy_from_slice(request.sku_id.as_bytes());
    r[8..24].copy_from_slice(request.client_base_id.as_bytes());
    assert!(matches!(
        pending.open(&sealer.seal_raw(&keys, &r)),
        Err(ProtoError::ClientIdMismatch)
    ));
    let answer = sealer.seal(&keys, 5, LICENSE, &[]).expect("seals");
    assert_eq!(
        pending.open(&answer).expect("opens").response.client_id,
        Uuid::from_u128(0xadd)
    );
}

#[test]
fn truncation_at_every_length_is_rejected() {
    let (keys, datagram, pending, sealer) = exchange();
    for len in 0..datagram.len() {
        assert!(
            open_request(&keys, &datagram[..len]).is_err(),
            "request cut to {len}"
        );
    }
    let answer = sealer.seal_raw(&keys, &response_plaintext());
    for len in 0..answer.len() {
        assert!(
            pending.open(&answer[..len]).is_err(),
            "response cut to {len}"
        );
    }
    for len in 0..=REQUEST_HEADER_LEN {
        assert!(Request::decode(&request_plaintext()[..len]).is_err());
    }
    for len in 0..RESPONSE_HEADER_LEN {
        assert!(lap_proto::Response::decode(&response_plaintext()[..len]).is_err());
    }
}

#[test]
fn oversize_is_rejected_on_both_sides() {
    let keys = server_keys();
    // A request plaintext one byte over the datagram limit.
    let mut request = sample_request();
    request.client_seed = Zeroizing::new(vec![1; MAX_SEED_LEN + 1]);
    assert!(matches!(request.encode(), Err(ProtoError::TooLong { .. })));
    request.client_seed = Zeroizing::new(vec![1; MAX_SEED_LEN]);
    let (datagram, pending) =
        seal_request(keys.public(), &request, &ephemeral(5)).expect("max size seals");
    assert_eq!(datagram.len(), MAX_DATAGRAM_LEN);
    let mut too_long = datagram.clone();
    too_long.push(0);
    assert!(matches!(
        open_request(&keys, &too_long),
        Err(ProtoError::TooLong { .. })
    ));

    // A server never answers with more than it was sent, and a client refuses if one does.
    let small = sample_request();
    let (small_datagram, small_pending) =
        seal_request(keys.public(), &small, &ephemeral(6)).expect("seals");
    let (_, sealer) = open_request(&keys, &small_datagram).expect("opens");
    let room = sealer.max_server_data_len();
    assert_eq!(
        room,
        small.client_seed.len(),
        "ServerData may be as long as the seed, not longer"
    );
    assert!(
        sealer
            .seal(&keys, 1, LICENSE, &vec![0x80; room + 1])
            .is_err()
    );
    let fits = sealer.seal(&keys, 1, LICENSE, &[]).expect("fits");
    assert!(small_pending.open(&fits).is_ok());
    let mut r = response_plaintext();
    r.extend(std::iter::repeat_n(0x80, room + 1 - 4));
    let len = u16::try_from(r.len()).expect("small");
    r[1..3].copy_from_slice(&len.to_le_bytes());
    let oversized = sealer.seal_raw(&keys, &r);
    assert_eq!(oversized.len(), small_datagram.len() + 1);
    assert!(matches!(
        small_pending.open(&oversized),
        Err(ProtoError::TooLong { .. })
    ));
    drop(pending);
}

#[test]
fn low_order_and_zero_x25519_points_are_rejected() {
    let primitives = load_json("primitives.json");
    let points = primitives["x25519_low_order"].as_array().expect("list");
    assert!(points.len() >= 7);
    let (keys, datagram, _, _) = exchange();
    for point in points {
        let u = common::hex32(point, "u");
        // Server side: a request whose ephemeral key is a low-order point.
        let mut forged = datagram.clone();
        forged[..32].copy_from_slice(&u);
        assert!(
            matches!(
                open_request(&keys, &forged),
                Err(ProtoError::Authentication(AuthStage::ZeroSharedSecret))
            ),
            "{}",
            point["point"]
        );
        // Client side: a provisioned server key that is a low-order point.
        let bad_server =
            ServerPublicKeys::from_bytes(u, keys.public().ed25519_bytes()).expect("ed25519 fine");
        assert!(matches!(
            seal_request(
                &bad_server,
                &sample_request(),
                &EphemeralSecret::from_bytes([7; 32])
            ),
            Err(ProtoError::Authentication(AuthStage::ZeroSharedSecret))
        ));
    }
}

#[test]
fn retries_accept_an_answer_to_any_attempt_in_flight() {
    let keys = server_keys();
    let (datagrams, pendings): (Vec<Vec<u8>>, Vec<PendingExchange>) = (10..13)
        .map(|n| seal_request(keys.public(), &sample_request(), &ephemeral(n)).expect("seals"))
        .unzip();
    for (index, datagram) in datagrams.iter().enumerate() {
        let (_, sealer) = open_request(&keys, datagram).expect("opens");
        let answer = sealer.seal(&keys, 9, LICENSE, &[]).expect("seals");
        let (which, activation) = open_any(&pendings, &answer).expect("some attempt accepts it");
        assert_eq!(which, index);
        assert_eq!(activation.response.license_id, LICENSE);
    }
    let stranger = ServerSecretKeys::from_bytes([0x11; 32], &[0x33; 32]);
    let (_, sealer) = open_request(&keys, &datagrams[0]).expect("opens");
    assert!(
        open_any(
            &pendings,
            &sealer.seal(&stranger, 9, LICENSE, &[]).expect("seals")
        )
        .is_err()
    );
}

#[test]
fn times_beyond_five_bytes_are_refused() {
    let mut request = sample_request();
    request.client_time = lap_proto::time::MAX_TIME;
    assert!(request.encode().is_ok());
    request.client_time = lap_proto::time::MAX_TIME + 1;
    assert!(matches!(
        request.encode(),
        Err(ProtoError::TimeOutOfRange(_))
    ));
}

#[test]
fn invalid_server_keys_are_refused_at_provisioning() {
    // Not a point on the curve: y = 2 has no x.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert!(ServerPublicKeys::from_bytes([9; 32], &not_a_point).is_err());
    // The identity point is weak (small order).
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(ServerPublicKeys::from_bytes([9; 32], &identity).is_err());
}

#[test]
fn errors_and_debug_never_show_secrets() {
    let request = sample_request();
    let text = format!("{request:?}");
    assert!(text.contains("<194 bytes>"), "{text}");
    assert!(
        !text.contains("7, 7, 7"),
        "seed bytes must not be printed: {text}"
    );
    let keys = server_keys();
    let debug = format!("{keys:?}");
    assert!(!debug.contains(&hex::encode([0x11u8; 32])), "{debug}");
}

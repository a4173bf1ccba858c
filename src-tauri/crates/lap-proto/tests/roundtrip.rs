//! Property tests: everything that encodes decodes to itself, and every exchange of valid
//! parts succeeds end to end.

mod common;

use lap_proto::delegation::DELEGATION_LEN;
use lap_proto::time::MAX_TIME;
use lap_proto::wire::MAX_SEED_LEN;
use lap_proto::{
    ActivationRecord, Delegation, EphemeralSecret, LicenseKind, Request, Response, ServerData,
    Uuid, open_request, seal_request,
};
use proptest::prelude::*;
use zeroize::Zeroizing;

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn non_nil_uuid() -> impl Strategy<Value = Uuid> {
    (1..=u128::MAX).prop_map(Uuid::from_u128)
}

prop_compose! {
    fn request()(
        client_time in 0..=MAX_TIME,
        client_base_id in non_nil_uuid(),
        client_addon_id in uuid(),
        sku_id in non_nil_uuid(),
        current_license_id in uuid(),
        seed in proptest::collection::vec(any::<u8>(), 1..=MAX_SEED_LEN),
    ) -> Request {
        Request { client_time, client_base_id, client_addon_id, sku_id, current_license_id, client_seed: Zeroizing::new(seed) }
    }
}

fn server_data() -> impl Strategy<Value = ServerData> {
    (
        proptest::option::of(0..=MAX_TIME),
        proptest::option::of(0..=MAX_TIME),
        proptest::option::of(prop_oneof![
            Just(LicenseKind::Perpetual),
            Just(LicenseKind::Term),
            Just(LicenseKind::Subscription),
            Just(LicenseKind::Evaluation)
        ]),
        proptest::option::of(any::<bool>()),
        proptest::collection::vec("[a-z0-9_.-]{1,12}", 0..5),
        proptest::option::of("[ -~]{0,200}"),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        proptest::collection::vec(
            (0x80u8..=0xff, proptest::collection::vec(any::<u8>(), 0..32)),
            0..4,
        ),
        // Profile 1.1: Released, Seats, Delegation (any 153 bytes: parse does not verify),
        // Duplicate.
        (
            any::<bool>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(proptest::collection::vec(
                any::<u8>(),
                DELEGATION_LEN..=DELEGATION_LEN,
            )),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                not_after,
                renew_after,
                kind,
                in_compliance,
                features,
                notice,
                asset_key,
                vendor_records,
                (released, seats, delegation, duplicate),
            )| {
                // A delegation's NotAfter is 5 bytes on the wire, so any bytes read back.
                let delegation = delegation.map(|bytes| {
                    Box::new(Delegation::from_bytes(
                        bytes.as_slice().try_into().expect("153 bytes"),
                    ))
                });
                ServerData {
                    not_after,
                    renew_after,
                    kind,
                    in_compliance,
                    features,
                    notice,
                    asset_key: asset_key.map(Zeroizing::new),
                    released,
                    seats,
                    delegation,
                    duplicate,
                    vendor_records,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn request_plaintext_round_trips(request in request()) {
        let bytes = request.encode().expect("valid request encodes");
        prop_assert_eq!(bytes.len(), request.encoded_len());
        let decoded = Request::decode(&bytes).expect("decodes");
        prop_assert_eq!(&decoded, &request);
        let again = decoded.encode().expect("re-encodes");
        prop_assert_eq!(again.as_slice(), bytes.as_slice());
    }

    #[test]
    fn response_plaintext_round_trips(
        server_time in 0..=MAX_TIME,
        ids in (non_nil_uuid(), non_nil_uuid(), non_nil_uuid()),
        data in proptest::collection::vec(any::<u8>(), 0..1000),
    ) {
        let response = Response { server_time, client_id: ids.0, sku_id: ids.1, license_id: ids.2, server_data: Zeroizing::new(data) };
        let bytes = response.encode().expect("encodes");
        prop_assert_eq!(Response::decode(&bytes).expect("decodes"), response);
    }

    #[test]
    fn server_data_round_trips(data in server_data()) {
        let bytes = data.encode().expect("encodes");
        prop_assert_eq!(ServerData::parse(&bytes).expect("parses"), data);
    }

    #[test]
    fn full_exchange_succeeds_and_the_record_verifies(
        request in request(),
        ephemeral in any::<[u8; 32]>(),
        server_time in 0..=MAX_TIME,
        license_id in non_nil_uuid(),
        data in server_data(),
    ) {
        let keys = common::server_keys();
        let (datagram, pending) = seal_request(keys.public(), &request, &EphemeralSecret::from_bytes(ephemeral))
            .expect("seals");
        prop_assert!(datagram.len() <= 1200);
        let (opened, sealer) = open_request(&keys, &datagram).expect("server opens");
        prop_assert_eq!(&opened, &request);
        let encoded = data.encode().expect("encodes");
        let answer = sealer.seal(&keys, server_time, license_id, &encoded);
        if encoded.len() > sealer.max_server_data_len() {
            prop_assert!(answer.is_err(), "the amplification rule holds");
            return Ok(());
        }
        let answer = answer.expect("fits");
        prop_assert!(answer.len() <= datagram.len());
        let activation = pending.open(&answer).expect("client opens");
        prop_assert_eq!(activation.response.client_id, request.client_id());
        prop_assert_eq!(activation.response.license_id, license_id);
        let record = ActivationRecord::new("acme-studio", &activation);
        let reread = ActivationRecord::from_json(&record.to_json()).expect("record parses");
        prop_assert_eq!(&reread, &record);
        let verified = reread.verify(request.sku_id, keys.public().ed25519_bytes()).expect("record verifies");
        prop_assert_eq!(verified.server_data, data);
    }
}

#[test]
fn a_tampered_record_does_not_verify() {
    let keys = common::server_keys();
    let request = common::sample_request();
    let (datagram, pending) =
        seal_request(keys.public(), &request, &common::ephemeral(2)).expect("seals");
    let (_, sealer) = open_request(&keys, &datagram).expect("opens");
    let data = ServerData {
        not_after: Some(1_800_000_000),
        ..ServerData::default()
    }
    .encode()
    .expect("encodes");
    let activation = pending
        .open(
            &sealer
                .seal(&keys, 1_795_000_000, Uuid::from_u128(77), &data)
                .expect("seals"),
        )
        .expect("opens");
    let record = ActivationRecord::new("acme-studio", &activation);
    let public = *keys.public().ed25519_bytes();
    record
        .verify(request.sku_id, &public)
        .expect("genuine record verifies");

    let mut other_sku = record.clone();
    other_sku.sku = Uuid::from_u128(1);
    assert!(other_sku.verify(request.sku_id, &public).is_err());
    assert!(
        record.verify(Uuid::from_u128(1), &public).is_err(),
        "a product checks its own SKU"
    );
    let mut other_license = record.clone();
    other_license.license_id = Uuid::from_u128(78);
    assert!(other_license.verify(request.sku_id, &public).is_err());
    let mut other_key = record.clone();
    other_key.key = base64_of(&[0u8; 32]);
    assert!(other_key.verify(request.sku_id, &public).is_err());
    let impostor = lap_proto::ServerSecretKeys::from_bytes([1; 32], &[2; 32]);
    assert!(
        record
            .verify(request.sku_id, impostor.public().ed25519_bytes())
            .is_err()
    );
    assert!(
        ActivationRecord::from_json(&record.to_json().replace("\"schema\": 1", "\"schema\": 2"))
            .is_err()
    );
    assert!(ActivationRecord::from_json("{").is_err());
    assert!(
        !format!("{record:?}").contains(&record.key),
        "Debug hides the key"
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

//! Replays the golden vectors of `tests/vectors/`, produced by an independent Python
//! implementation (`gen_vectors.py`, pyca/cryptography), byte for byte.

mod common;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use common::{hex_field, hex32, load_json, uuid_field};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use lap_proto::crypto::kdf;
use lap_proto::{
    EphemeralSecret, Request, Response, ServerData, ServerPublicKeys, ServerSecretKeys,
    open_request, seal_request,
};
use zeroize::Zeroizing;

fn server(vectors: &serde_json::Value) -> ServerSecretKeys {
    let s = &vectors["server"];
    let keys = ServerSecretKeys::from_bytes(hex32(s, "x25519_secret"), &hex32(s, "ed25519_seed"));
    assert_eq!(keys.public().x25519_bytes(), &hex32(s, "x25519_public"));
    assert_eq!(keys.public().ed25519_bytes(), &hex32(s, "ed25519_public"));
    keys
}

fn cases(vectors: &serde_json::Value) -> &Vec<serde_json::Value> {
    let cases = vectors["cases"].as_array().expect("cases");
    assert!(cases.len() >= 6, "the vector file lost cases");
    cases
}

#[test]
fn requests_are_built_byte_for_byte() {
    let vectors = load_json("lap-v2.json");
    let keys = server(&vectors);
    for case in cases(&vectors) {
        let name = case["name"].as_str().expect("name");
        let r = &case["request"];
        let request = Request {
            client_time: r["client_time"].as_u64().expect("client_time"),
            client_base_id: uuid_field(r, "client_base_id"),
            client_addon_id: uuid_field(r, "client_addon_id"),
            sku_id: uuid_field(r, "sku_id"),
            current_license_id: uuid_field(r, "current_license_id"),
            client_seed: Zeroizing::new(hex_field(r, "client_seed")),
        };
        assert_eq!(
            request.encode().expect("encodes").as_slice(),
            hex_field(r, "plaintext"),
            "{name}: plaintext"
        );
        let ephemeral = EphemeralSecret::from_bytes(hex32(r, "ephemeral_secret"));
        assert_eq!(
            ephemeral.public_key(),
            hex32(r, "ephemeral_public"),
            "{name}: ephemeral public"
        );

        let session = kdf(
            &hex32(r, "ephemeral_public"),
            keys.public(),
            &hex32(r, "shared_secret"),
        );
        let okm = hex_field(r, "okm");
        assert_eq!(
            session.client_to_server.as_slice(),
            &okm[..32],
            "{name}: c2s key"
        );
        assert_eq!(
            session.server_to_client.as_slice(),
            &okm[32..],
            "{name}: s2c key"
        );
        assert_eq!(
            session.client_to_server.as_slice(),
            hex32(r, "c2s_key"),
            "{name}"
        );
        assert_eq!(
            session.server_to_client.as_slice(),
            hex32(r, "s2c_key"),
            "{name}"
        );

        let (datagram, _pending) =
            seal_request(keys.public(), &request, &ephemeral).expect("seals");
        assert_eq!(
            hex::encode(&datagram),
            r["datagram"].as_str().expect("datagram"),
            "{name}: request datagram"
        );
    }
}

#[test]
fn server_opens_requests_and_signs_responses_byte_for_byte() {
    let vectors = load_json("lap-v2.json");
    let keys = server(&vectors);
    for case in cases(&vectors) {
        let name = case["name"].as_str().expect("name");
        let (r, a) = (&case["request"], &case["response"]);
        let (request, sealer) =
            open_request(&keys, &hex_field(r, "datagram")).expect("server opens the vector");
        assert_eq!(
            request.encode().expect("encodes").as_slice(),
            hex_field(r, "plaintext"),
            "{name}"
        );
        assert_eq!(
            sealer.client_id(),
            uuid_field(a, "client_id"),
            "{name}: ClientId rule"
        );
        let answer = sealer
            .seal(
                &keys,
                a["server_time"].as_u64().expect("server_time"),
                uuid_field(a, "license_id"),
                &hex_field(a, "server_data"),
            )
            .expect("seals");
        assert_eq!(
            hex::encode(&answer),
            a["datagram"].as_str().expect("datagram"),
            "{name}: response datagram"
        );
        assert!(
            answer.len() <= hex_field(r, "datagram").len(),
            "{name}: amplification rule"
        );
    }
}

#[test]
fn client_opens_the_vector_responses() {
    let vectors = load_json("lap-v2.json");
    let keys = server(&vectors);
    let public =
        ServerPublicKeys::from_bytes(*keys.public().x25519_bytes(), keys.public().ed25519_bytes())
            .expect("valid keys");
    for case in cases(&vectors) {
        let name = case["name"].as_str().expect("name");
        let (r, a) = (&case["request"], &case["response"]);
        let request =
            Request::decode(&hex_field(r, "plaintext")).expect("vector plaintext decodes");
        let ephemeral = EphemeralSecret::from_bytes(hex32(r, "ephemeral_secret"));
        let (_, pending) = seal_request(&public, &request, &ephemeral).expect("seals");
        let activation = pending
            .open(&hex_field(a, "datagram"))
            .expect("client accepts the vector answer");
        let expected =
            Response::decode(&hex_field(a, "plaintext")).expect("vector plaintext decodes");
        assert_eq!(activation.response, expected, "{name}");
        assert_eq!(
            activation.response.license_id,
            uuid_field(a, "license_id"),
            "{name}"
        );
        assert_eq!(
            activation.server_to_client_key.as_slice(),
            hex32(r, "s2c_key"),
            "{name}"
        );
        ServerData::parse(&activation.response.server_data)
            .expect("vector ServerData is valid TLV v1");
    }
}

#[test]
fn x25519_known_answers() {
    let p = load_json("primitives.json");
    for v in p["x25519"]["single_iteration"].as_array().expect("list") {
        assert_eq!(
            x25519_dalek::x25519(hex32(v, "scalar"), hex32(v, "u")),
            hex32(v, "output")
        );
    }
    for v in p["x25519"]["diffie_hellman"].as_array().expect("list") {
        let alice = x25519_dalek::StaticSecret::from(hex32(v, "alice_private"));
        let bob = x25519_dalek::StaticSecret::from(hex32(v, "bob_private"));
        let alice_public = x25519_dalek::PublicKey::from(&alice);
        let bob_public = x25519_dalek::PublicKey::from(&bob);
        assert_eq!(alice_public.as_bytes(), &hex32(v, "alice_public"));
        assert_eq!(bob_public.as_bytes(), &hex32(v, "bob_public"));
        assert_eq!(
            alice.diffie_hellman(&bob_public).as_bytes(),
            &hex32(v, "shared_secret")
        );
        assert_eq!(
            bob.diffie_hellman(&alice_public).as_bytes(),
            &hex32(v, "shared_secret")
        );
    }
}

#[test]
fn ed25519_known_answers() {
    let p = load_json("primitives.json");
    for v in p["ed25519"].as_array().expect("list") {
        let signing = SigningKey::from_bytes(&hex32(v, "secret"));
        assert_eq!(signing.verifying_key().as_bytes(), &hex32(v, "public"));
        let message = hex_field(v, "message");
        let signature = signing.sign(&message);
        assert_eq!(signature.to_bytes().as_slice(), hex_field(v, "signature"));
        let verifying = VerifyingKey::from_bytes(&hex32(v, "public")).expect("valid public key");
        let parsed = Signature::from_slice(&hex_field(v, "signature")).expect("64 bytes");
        verifying
            .verify_strict(&message, &parsed)
            .expect("verifies");
    }
}

#[test]
fn chacha20poly1305_known_answers() {
    let p = load_json("primitives.json");
    for v in p["chacha20poly1305"].as_array().expect("list") {
        let cipher = ChaCha20Poly1305::new(&hex32(v, "key").into());
        let nonce = Nonce::try_from(hex_field(v, "nonce").as_slice()).expect("12-byte nonce");
        let mut buffer = hex_field(v, "plaintext");
        let tag = cipher
            .encrypt_inout_detached(&nonce, &hex_field(v, "aad"), buffer.as_mut_slice().into())
            .expect("encrypts");
        assert_eq!(buffer, hex_field(v, "ciphertext"));
        assert_eq!(tag.as_slice(), hex_field(v, "tag"));
        let tag = Tag::try_from(hex_field(v, "tag").as_slice()).expect("16-byte tag");
        cipher
            .decrypt_inout_detached(
                &nonce,
                &hex_field(v, "aad"),
                buffer.as_mut_slice().into(),
                &tag,
            )
            .expect("decrypts");
        assert_eq!(buffer, hex_field(v, "plaintext"));
    }
}

fn check_hkdf<H>(cases: &serde_json::Value)
where
    H: hmac::EagerHash + Clone,
    hmac::Hmac<H>: hmac::KeyInit + hmac::Mac + Clone,
{
    for v in cases.as_array().expect("list") {
        let salt = v["salt"]
            .as_str()
            .map(|s| hex::decode(s).expect("hex salt"));
        let length = usize::try_from(v["L"].as_u64().expect("L")).expect("small");
        let (prk, hk) = Hkdf::<H>::extract(salt.as_deref(), &hex_field(v, "ikm"));
        assert_eq!(prk.as_slice(), hex_field(v, "prk"), "{}", v["source"]);
        let mut okm = vec![0u8; length];
        hk.expand(&hex_field(v, "info"), &mut okm)
            .expect("valid length");
        assert_eq!(okm, hex_field(v, "okm"), "{}", v["source"]);
    }
}

#[test]
fn hkdf_known_answers() {
    let p = load_json("primitives.json");
    check_hkdf::<sha2::Sha256>(&p["hkdf_sha256"]);
    check_hkdf::<sha2::Sha512>(&p["hkdf_sha512"]);
}

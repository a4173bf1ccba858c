//! What goes on the wire, opened with the server's keys as `lapd` opens it: a first
//! activation carries the nil CurrentLicenseId and a renewal the grant's LicenseId (draft
//! §3), and no two attempts ever send the same datagram (a fresh ephemeral key each time,
//! even within one second of the clock).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use lap_proto::Uuid;
use lap_proto::test_util::key;
use lapwing_core::status::Phase;
use support::{Relayed, quick, setup};

#[tokio::test]
async fn a_first_activation_sends_the_nil_license_id_and_a_renewal_the_grant_s() {
    let server = Relayed::start();
    let s = setup(server.address, quick());
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    let first = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(first.state, Phase::Activated);
    let granted = first.license_id.expect("a license id");
    assert_ne!(granted, Uuid::nil());
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "answered at the first attempt");
    let request = seen[0]
        .request
        .as_ref()
        .expect("opens with the server's keys");
    assert_eq!(request.current_license_id, Uuid::nil(), "first activation");

    // A renewal, asked for now rather than at RenewAfter: `lapd` checks ClientTime against
    // its own (real) clock, which the fake clock cannot move.
    let renewed = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(renewed.state, Phase::Activated);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let renewal = seen[1].request.as_ref().expect("opens");
    assert_eq!(renewal.current_license_id, granted, "the last LicenseId");
    assert_eq!(
        (renewal.client_base_id, renewal.sku_id),
        (request.client_base_id, request.sku_id),
        "the same installation"
    );
}

#[tokio::test]
async fn no_two_attempts_send_the_same_datagram_even_within_one_second() {
    let server = Relayed::start();
    // Three attempts per activation, and a clock that never moves: every request of these
    // two activations carries the same ClientTime, so only a fresh key can set them apart.
    let s = setup(server.address, vec![Duration::from_millis(100); 3]);
    s.engine
        .set_key("acme-studio", &key(9).to_display())
        .expect("key");
    server.set_open(false);
    for _ in 0..2 {
        s.engine.activate("acme-studio", None).await.expect("runs");
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 6, "three attempts, twice");
    let times: HashSet<u64> = seen
        .iter()
        .map(|s| s.request.as_ref().expect("opens").client_time)
        .collect();
    assert_eq!(times.len(), 1, "one ClientTime for all: {times:?}");
    let datagrams: HashSet<&[u8]> = seen.iter().map(|s| s.datagram.as_slice()).collect();
    assert_eq!(datagrams.len(), 6, "no datagram repeated");
    let ephemerals: HashSet<&[u8]> = seen.iter().map(|s| &s.datagram[..32]).collect();
    assert_eq!(ephemerals.len(), 6, "a fresh ephemeral key per attempt");
}

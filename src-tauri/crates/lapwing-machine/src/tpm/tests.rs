//! The EK against a real software TPM (swtpm), and the states without one.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::canonical::der_prefix;
use super::*;
use crate::test_util::{SwtpmState, free_port_pair};

const GENEROUS: Duration = Duration::from_secs(20);

fn present(reading: &TpmReading) -> &EkPublic {
    match &reading.state {
        TpmState::Present(ek) => ek,
        other => panic!("expected an EK through {}, got {other:?}", reading.target),
    }
}

#[test]
fn ek_is_stable_across_reads_and_restarts_and_differs_for_a_fresh_tpm() {
    let state = SwtpmState::manufacture();
    let swtpm = state.start();
    let target = TpmTarget::Tcti(swtpm.tcti());
    let first = read_ek(&target, EkMethod::Auto, GENEROUS);
    let second = read_ek(&target, EkMethod::Auto, GENEROUS);
    let ek = present(&first);
    assert_eq!(
        ek.origin,
        EkOrigin::Certificate,
        "swtpm_setup stored an EK certificate"
    );
    assert_eq!(ek.algorithm, "rsa2048");
    assert_eq!(ek.canonical.len(), 256);
    assert_eq!(ek, present(&second), "two reads agree");
    eprintln!(
        "swtpm EK read (certificate path): first {:?}, second {:?}",
        first.elapsed, second.elapsed
    );

    swtpm.stop();
    let restarted = state.start();
    let after = read_ek(&TpmTarget::Tcti(restarted.tcti()), EkMethod::Auto, GENEROUS);
    assert_eq!(ek, present(&after), "the same state survives a restart");

    let other = SwtpmState::manufacture();
    let other_tpm = other.start();
    let fresh = read_ek(&TpmTarget::Tcti(other_tpm.tcti()), EkMethod::Auto, GENEROUS);
    assert_ne!(
        ek.canonical,
        present(&fresh).canonical,
        "a fresh endorsement seed is another machine"
    );
}

#[test]
fn certificate_persistent_key_and_template_agree() {
    let state = SwtpmState::manufacture();
    let swtpm = state.start();
    let target = TpmTarget::Tcti(swtpm.tcti());
    let cert = read_ek(&target, EkMethod::Certificate, GENEROUS);
    let persistent = read_ek(&target, EkMethod::Persistent, GENEROUS);
    let template = read_ek(&target, EkMethod::Template, GENEROUS);
    assert_eq!(present(&cert).origin, EkOrigin::Certificate);
    assert_eq!(present(&persistent).origin, EkOrigin::Persistent);
    assert_eq!(present(&template).origin, EkOrigin::Template);
    assert_eq!(present(&cert).canonical, present(&template).canonical);
    assert_eq!(present(&cert).canonical, present(&persistent).canonical);
    eprintln!(
        "swtpm EK read: certificate {:?}, persistent {:?}, template {:?}",
        cert.elapsed, persistent.elapsed, template.elapsed
    );
    // The template path leaves no transient object behind: a second creation still works
    // (a TPM has only a few object slots).
    for _ in 0..4 {
        present(&read_ek(&target, EkMethod::Template, GENEROUS));
    }
}

#[test]
fn a_closed_port_is_a_state_within_the_deadline() {
    let port = free_port_pair();
    let target = TpmTarget::Tcti(format!("swtpm:host=127.0.0.1,port={port}"));
    let start = Instant::now();
    let reading = read_ek(&target, EkMethod::Auto, DEFAULT_TIMEOUT);
    assert!(
        matches!(reading.state, TpmState::Failed(_) | TpmState::Absent),
        "{:?}",
        reading.state
    );
    assert!(start.elapsed() < DEFAULT_TIMEOUT + Duration::from_millis(500));
}

#[test]
fn a_tpm_that_never_answers_times_out() {
    // Accepts connections (TPM and control port) and never says a word.
    let port = free_port_pair();
    let server = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let ctrl = TcpListener::bind(("127.0.0.1", port + 1)).expect("bind ctrl");
    for listener in [server, ctrl] {
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
    }
    let timeout = Duration::from_millis(300);
    let reading = read_ek(
        &TpmTarget::Tcti(format!("swtpm:host=127.0.0.1,port={port}")),
        EkMethod::Auto,
        timeout,
    );
    assert_eq!(reading.state, TpmState::TimedOut);
    assert!(
        reading.elapsed < timeout + Duration::from_millis(200),
        "{:?}",
        reading.elapsed
    );
}

#[test]
fn a_missing_device_is_absent_and_a_bad_tcti_fails() {
    let reading = read_ek(
        &TpmTarget::Device("/nonexistent/tpmrm0".into()),
        EkMethod::Auto,
        DEFAULT_TIMEOUT,
    );
    assert_eq!(reading.state, TpmState::Absent);
    let reading = read_ek(
        &TpmTarget::Tcti("carrier-pigeon:coop=3".into()),
        EkMethod::Auto,
        DEFAULT_TIMEOUT,
    );
    assert!(
        matches!(reading.state, TpmState::Failed(_)),
        "{:?}",
        reading.state
    );
}

#[test]
fn canonical_forms() {
    assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), &[1, 0]);
    assert_eq!(strip_leading_zeros(&[0, 0]), &[] as &[u8]);
    assert_eq!(
        ecc_canonical(&[0, 1], &[2, 3, 4], 4),
        Some(vec![0, 0, 0, 1, 0, 2, 3, 4])
    );
    assert_eq!(ecc_canonical(&[1; 5], &[1], 4), None);
    assert_eq!(
        der_prefix(&[0x30, 3, 1, 2, 3, 0xff, 0xff]),
        Some(&[0x30, 3, 1, 2, 3][..])
    );
    let mut long = vec![0x30, 0x82, 0x01, 0x00];
    long.extend_from_slice(&[7; 0x100]);
    long.extend_from_slice(&[0; 40]);
    assert_eq!(der_prefix(&long).map(<[u8]>::len), Some(0x104));
    assert_eq!(der_prefix(&[0x30, 0x82, 0x01]), None);
    assert_eq!(der_prefix(&[0x31, 1, 0]), None);
    assert!(certificate_public_key(&[0x30, 3, 1, 2, 3]).is_err());
}

//! What a licensed product does at start: read the activation record Lapwing wrote for it
//! (profile §7), verify it with the server key the product was built with, and decide.
//! Lapwing never needs to be trusted: a record it (or anyone) altered fails the signature.
//! The record is either an activation (the server's signed answer) or, once the vendor has
//! published its final release, a sunset record (the vendor's signed grant, valid forever).
//!
//! ```sh
//! cargo run -p lap-proto --example verify_record -- \
//!     ~/.local/share/lapwing/activations/acme-studio.json \
//!     6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11 \
//!     <the server's ed25519 public key, hex, as in the manifest>
//! ```

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use lap_proto::{LicenseKind, ProductRecord, Uuid, VerifiedRecord};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, sku, ed25519] = args.as_slice() else {
        eprintln!("usage: verify_record RECORD.json SKU ED25519_PUBLIC_HEX");
        return ExitCode::from(2);
    };
    match check(path, sku, ed25519) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            // The product's own policy decides what "not licensed" means: here, say why.
            eprintln!("not licensed: {why}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &str, sku: &str, ed25519: &str) -> Result<(), String> {
    // In a real product these two are constants compiled in, not arguments.
    let sku: Uuid = sku.parse().map_err(|e| format!("SKU: {e}"))?;
    let server_key: [u8; 32] = hex::decode(ed25519)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("the server key must be 32 bytes of hex")?;

    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let record = ProductRecord::from_json(&text).map_err(|e| e.to_string())?;
    // Signature, decryption, SKU and client id: all checked here, against the product's key.
    let verified = record
        .verify(sku, &server_key)
        .map_err(|e| format!("the record does not verify: {e}"))?;
    let data = verified.server_data();

    // The time rules are the product's: NotAfter ends the license (profile §5).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    if let Some(end) = data.not_after
        && now >= end
    {
        return Err(format!("the license ended at {end} (UNIX time)"));
    }
    let kind = data.kind.map_or("unspecified", LicenseKind::as_str);
    match &verified {
        VerifiedRecord::Activation(activation) => {
            println!(
                "licensed: {kind}, license {}",
                activation.response.license_id
            );
            // An answer from the customer's own server, which the vendor authorised (profile
            // 1.1, §10): already checked against the built-in key by `verify`.
            if let Some(delegation) = &activation.delegated_by {
                println!(
                    "through the customer's server the vendor delegated ({} seats until {})",
                    delegation.seats, delegation.not_after
                );
            }
        }
        VerifiedRecord::Sunset(_) => {
            println!("licensed: {kind}, for good (the vendor's final release)");
        }
    }
    println!(
        "until: {}",
        data.not_after
            .map_or_else(|| "no end".to_owned(), |t| t.to_string())
    );
    println!("features: {}", data.features.join(", "));
    if data.in_compliance == Some(false) {
        println!("out of compliance: more copies in use than licensed");
    }
    if let Some(notice) = &data.notice {
        println!("notice: {notice}");
    }
    // AssetKey (data.asset_key) would unlock the product's own data here; never print it.
    Ok(())
}

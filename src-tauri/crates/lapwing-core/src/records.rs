//! The data directory's files, and the activation records products read (profile §7).

use std::path::{Path, PathBuf};

use lap_proto::{Activation, ActivationRecord, ServerData, ServerDataError};

use crate::state::{Grant, ServerUsed, prepare_data_dir};

/// `activations/` under the data directory.
pub fn records_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("activations")
}

/// Writes products' records, `activations/<id>.json`, readable by the product (same user)
/// and nobody else (0600): they hold the server-to-client key.
///
/// Each is written atomically, with the disk flushes shared
/// (`lapwing_fs::write_all_atomically`): N records cost N file flushes side by side and one
/// directory flush. One result per record, in order; a record that fails leaves that
/// product's previous record as it was.
pub fn write_records(
    data_dir: &Path,
    records: &[&ActivationRecord],
) -> Vec<std::io::Result<PathBuf>> {
    /// Flushes waiting side by side; 32 or 100 measured no faster here (2 cores).
    const PARALLEL_FLUSHES: usize = 8;
    let dir = records_dir(data_dir);
    let created =
        prepare_data_dir(data_dir).and_then(|()| lapwing_fs::create_private_dir(&dir).map(drop));
    if let Err(e) = created {
        return records
            .iter()
            .map(|_| Err(std::io::Error::new(e.kind(), e.to_string())))
            .collect();
    }
    // Writers killed between write and rename (a crash, a power cut) left temporaries.
    lapwing_fs::remove_stale_temporaries_in(&dir);
    let paths: Vec<PathBuf> = records
        .iter()
        .map(|record| dir.join(format!("{}.json", record.id)))
        .collect();
    let texts: Vec<String> = records.iter().map(|record| record.to_json()).collect();
    let files: Vec<lapwing_fs::FileWrite<'_>> = paths
        .iter()
        .zip(&texts)
        .map(|(path, text)| lapwing_fs::FileWrite {
            path,
            bytes: text.as_bytes(),
            mode: 0o600,
        })
        .collect();
    lapwing_fs::write_all_atomically(&files, PARALLEL_FLUSHES)
        .into_iter()
        .zip(&paths)
        .map(|(result, path)| result.map(|()| path.clone()))
        .collect()
}

/// Reads one product's record, if there is one that parses.
pub fn read_record(data_dir: &Path, id: &str) -> Option<ActivationRecord> {
    let text = std::fs::read_to_string(records_dir(data_dir).join(format!("{id}.json"))).ok()?;
    ActivationRecord::from_json(&text).ok()
}

/// Removes a product's record (on uninstall).
pub fn remove_record(data_dir: &Path, id: &str) -> std::io::Result<()> {
    match std::fs::remove_file(records_dir(data_dir).join(format!("{id}.json"))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What an accepted answer grants. A ServerData that is not valid TLV v1, or whose NotAfter
/// is already past, makes the whole answer invalid (profile §5): the caller keeps the
/// previous grant.
pub fn grant_from(
    activation: &Activation,
    received_at: u64,
    server: Option<ServerUsed>,
    without_key: bool,
) -> Result<Grant, ServerDataError> {
    let data = ServerData::parse(&activation.response.server_data)?;
    // An end already past (by the server's clock or ours) would replace a working grant
    // with an expired one: a broken or hostile server must not de-activate the client.
    if let Some(not_after) = data.not_after
        && not_after <= activation.response.server_time.max(received_at)
    {
        return Err(ServerDataError::InvalidValue {
            record_type: 0x01,
            reason: "NotAfter is already past",
        });
    }
    Ok(Grant::from_server_data(
        &activation.response,
        data,
        received_at,
        server,
        without_key,
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o7777
    }

    fn record(id: &str) -> ActivationRecord {
        ActivationRecord {
            schema: 1,
            id: id.into(),
            sku: lap_proto::Uuid::from_u128(1),
            client_id: lap_proto::Uuid::from_u128(2),
            license_id: lap_proto::Uuid::from_u128(3),
            server_time: 1_700_000_000,
            response: "AAAA".into(),
            key: "c2Vzc2lvbiBrZXk=".into(),
        }
    }

    #[test]
    fn records_are_the_users_alone_in_a_private_data_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("share/lapwing");
        let acme = record("acme");
        let results = write_records(&data, &[&acme]);
        let path = results[0].as_ref().expect("written");
        assert_eq!(
            mode_of(path),
            0o600,
            "a record holds the server-to-client key"
        );
        assert_eq!(mode_of(&data), 0o700);
        assert_eq!(mode_of(&records_dir(&data)), 0o700);
        assert_eq!(read_record(&data, "acme").expect("read back").key, acme.key);
    }

    #[test]
    fn a_record_written_over_a_readable_one_is_narrowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = records_dir(dir.path()).join("acme.json");
        std::fs::create_dir_all(old.parent().expect("parent")).expect("mkdir");
        std::fs::write(&old, b"{}").expect("old record");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_records(dir.path(), &[&record("acme")])
            .pop()
            .expect("one result")
            .expect("written");
        assert_eq!(mode_of(&old), 0o600);
    }
}

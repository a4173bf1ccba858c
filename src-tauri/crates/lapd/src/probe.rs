//! `lapd probe`: one activation exchange from the command line, so a vendor can check a
//! server and a catalog without installing a client. Prints what the server granted.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use lap_proto::{
    Activation, EphemeralSecret, LicenseKey, PendingExchange, Request, SeedV1, ServerData,
    ServerPublicKeys, Uuid, open_any, seal_request,
};
use serde::Serialize;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    #[error("probe: {0}")]
    Io(#[from] std::io::Error),
    #[error("probe: {0}")]
    Proto(#[from] lap_proto::ProtoError),
    #[error("probe: no randomness: {0}")]
    Random(String),
    #[error(
        "no answer from {server} after {attempts} attempts. A LAP server answers nothing it rejects: check the \
         server keys, the SKU, the key, whether the SKU is an add-on (--addon), this machine's clock (the server \
         allows 30 s), and that the server is reachable"
    )]
    Silence { server: SocketAddr, attempts: u32 },
}

/// What to ask for.
#[derive(Debug)]
pub struct Probe {
    pub server: SocketAddr,
    pub public_keys: ServerPublicKeys,
    pub sku: Uuid,
    pub key: Option<LicenseKey>,
    pub addon: bool,
    pub machine_hash: [u8; 32],
    pub attempts: u32,
    pub wait: Duration,
}

/// What came back, for printing.
#[derive(Debug, Serialize)]
pub struct ProbeAnswer {
    pub server_time: u64,
    pub client_id: Uuid,
    pub sku: Uuid,
    pub license_id: Uuid,
    pub kind: Option<&'static str>,
    pub not_after: Option<u64>,
    pub renew_after: Option<u64>,
    pub in_compliance: Option<bool>,
    pub features: Vec<String>,
    pub notice: Option<String>,
    pub asset_key: bool,
    pub vendor_records: usize,
    pub attempts: u32,
}

fn random<const N: usize>() -> Result<[u8; N], ProbeError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| ProbeError::Random(e.to_string()))?;
    Ok(out)
}

/// Sends fresh requests until one is answered, keeping every attempt's keys (profile §1).
pub fn run(probe: &Probe) -> Result<ProbeAnswer, ProbeError> {
    let bind = if probe.server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(probe.server)?;
    socket.set_read_timeout(Some(probe.wait))?;
    let seed = SeedV1 {
        decoded_key: probe.key.as_ref().map_or([0; 16], |k| *k.as_bytes()),
        machine_hash: probe.machine_hash,
        num_cpus: 1,
        num_cores: 1,
        install_nonce: random()?,
    };
    let base_id = Uuid::from_bytes(random()?);
    let addon_id = if probe.addon {
        Uuid::from_bytes(random()?)
    } else {
        Uuid::nil()
    };
    let mut pending: Vec<PendingExchange> = Vec::new();
    let mut buffer = [0u8; 2048];
    for attempt in 1..=probe.attempts {
        let now = lap_proto::time::unix_now();
        let request = Request {
            client_time: now,
            client_base_id: base_id,
            client_addon_id: addon_id,
            sku_id: probe.sku,
            current_license_id: Uuid::nil(),
            client_seed: Zeroizing::new(
                seed.encode(lap_proto::seed::DEFAULT_RESPONSE_ROOM)?
                    .to_vec(),
            ),
        };
        let (datagram, exchange) = seal_request(
            &probe.public_keys,
            &request,
            &EphemeralSecret::from_bytes(random()?),
        )?;
        pending.push(exchange);
        socket.send(&datagram)?;
        let deadline = std::time::Instant::now() + probe.wait;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            socket.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let Ok(len) = socket.recv(&mut buffer) else {
                break;
            };
            // Anything that does not open is ignored: a stray or forged datagram.
            if let Ok((_, activation)) = open_any(&pending, &buffer[..len]) {
                return describe(&activation, attempt);
            }
        }
    }
    Err(ProbeError::Silence {
        server: probe.server,
        attempts: probe.attempts,
    })
}

fn describe(activation: &Activation, attempts: u32) -> Result<ProbeAnswer, ProbeError> {
    let r = &activation.response;
    let data = ServerData::parse(&r.server_data).map_err(lap_proto::ProtoError::from)?;
    Ok(ProbeAnswer {
        server_time: r.server_time,
        client_id: r.client_id,
        sku: r.sku_id,
        license_id: r.license_id,
        kind: data.kind.map(lap_proto::LicenseKind::as_str),
        not_after: data.not_after,
        renew_after: data.renew_after,
        in_compliance: data.in_compliance,
        features: data.features.clone(),
        notice: data.notice.clone(),
        asset_key: data.asset_key.is_some(),
        vendor_records: data.vendor_records.len(),
        attempts,
    })
}

impl std::fmt::Display for ProbeAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "activated: license {} for SKU {}",
            self.license_id, self.sku
        )?;
        writeln!(f, "  kind          {}", self.kind.unwrap_or("(not said)"))?;
        match self.not_after {
            Some(t) => writeln!(f, "  not after     {}", utc(t))?,
            None => writeln!(f, "  not after     never")?,
        }
        if let Some(t) = self.renew_after {
            writeln!(f, "  renew after   {}", utc(t))?;
        }
        if let Some(ok) = self.in_compliance {
            writeln!(
                f,
                "  compliance    {}",
                if ok {
                    "in compliance"
                } else {
                    "OUT of compliance"
                }
            )?;
        }
        if !self.features.is_empty() {
            writeln!(f, "  features      {}", self.features.join(", "))?;
        }
        if let Some(n) = &self.notice {
            writeln!(f, "  notice        {n}")?;
        }
        write!(f, "  answered on attempt {}", self.attempts)
    }
}

/// `YYYY-MM-DD HH:MM UTC` for UNIX seconds.
pub fn utc(unix: u64) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(super::utc(1_795_000_000), "2026-11-18 11:06 UTC");
        assert_eq!(super::utc(4_102_444_799), "2099-12-31 23:59 UTC");
    }
}

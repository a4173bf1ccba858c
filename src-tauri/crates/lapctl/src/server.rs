//! `lapctl server set|clear|show`: the person's server override, and the same view of
//! overrides, machine policy and discovery that the tray's Server window shows
//! (`Engine::server_info`).

use std::borrow::Cow;
use std::io::Write;

use clap::Subcommand;
use lapwing_core::server_info::ServerInfo;
use lapwing_core::shown::shown;

use crate::error::exit;
use crate::products::{EngineArgs, engine, runtime};
use crate::{CliError, output};

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Use HOST:PORT for one product (--product) or all.
    Set {
        #[arg(long)]
        product: Option<String>,
        server: String,
    },
    /// Go back to discovery.
    Clear {
        #[arg(long)]
        product: Option<String>,
    },
    /// The overrides, the machine policy, the manifest's server, and the servers that would
    /// be tried, in order, with how each was found (every product, or one).
    Show {
        /// The product (the same as --product).
        #[arg(value_name = "ID", conflicts_with = "product")]
        id: Option<String>,
        #[arg(long)]
        product: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(
    args: &EngineArgs,
    command: &ServerCommand,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let engine = engine(args)?;
    match command {
        ServerCommand::Set { product, server } => {
            engine.set_server_override(product.as_deref(), Some(server))?;
            writeln!(
                out,
                "server {server} set for {}",
                product.as_deref().unwrap_or("every product")
            )?;
        }
        ServerCommand::Clear { product } => {
            engine.set_server_override(product.as_deref(), None)?;
            writeln!(
                out,
                "server override cleared for {}",
                product.as_deref().unwrap_or("every product")
            )?;
        }
        ServerCommand::Show { id, product, json } => {
            let ids: Vec<String> = match id.as_ref().or(product.as_ref()) {
                Some(id) => vec![id.clone()],
                None => engine.catalog().products.into_keys().collect(),
            };
            if ids.is_empty() && !*json {
                writeln!(out, "No product is installed.")?;
            }
            let rt = runtime()?;
            // By product id, as before the view grew: scripts reading `.[id].candidates` still do.
            let mut infos = serde_json::Map::new();
            for id in ids {
                let info = rt.block_on(engine.server_info(Some(&id)))?;
                if *json {
                    let value = serde_json::to_value(&info)
                        .map_err(|e| CliError::Runtime(format!("JSON: {e}")))?;
                    infos.insert(id, value);
                } else {
                    show(out, &info)?;
                }
            }
            if *json {
                output::json(out, &infos)?;
            }
        }
    }
    Ok(exit::OK)
}

fn or_not_set(value: Option<&str>) -> Cow<'_, str> {
    value.map_or(Cow::Borrowed("not set"), shown)
}

/// How a candidate was found, once: its detail already names the source ("manifest address
/// lap.acme.example:4711", "SRV _lap._udp…"), so the source's word is said only without one.
fn found_by(c: &lapwing_discovery::Candidate) -> Cow<'_, str> {
    if c.detail.trim().is_empty() {
        Cow::Borrowed(c.source.as_str())
    } else {
        shown(&c.detail)
    }
}

/// One product's block: the settings discovery starts from, then its answer. Everything but
/// the words is outside text (what was typed, the policy, the manifest, DNS and mDNS answers),
/// so it goes through `shown`; `--json` keeps it exact.
fn show(out: &mut dyn Write, info: &ServerInfo) -> Result<(), CliError> {
    writeln!(
        out,
        "{}:",
        shown(info.product.as_deref().unwrap_or("every product"))
    )?;
    if info.product.is_some() {
        writeln!(
            out,
            "  override for this product:   {}",
            or_not_set(info.product_override.as_deref())
        )?;
    }
    writeln!(
        out,
        "  override for every product:  {}",
        or_not_set(info.global_override.as_deref())
    )?;
    let policy = match (&info.policy_server, info.policy_locked) {
        (Some(server), true) => format!("{} (locked: overrides are not used)", shown(server)),
        (None, true) => "locked: overrides are not used".to_owned(),
        (Some(server), false) => shown(server).into_owned(),
        (None, false) => "none".to_owned(),
    };
    writeln!(out, "  machine policy:              {policy}")?;
    if let Some(name) = &info.through {
        writeln!(
            out,
            "  provisioned:                 through {} (set up by your administrator)",
            shown(name)
        )?;
    }
    if info.product.is_some() {
        writeln!(
            out,
            "  manifest:                    address {}, SRV domain {}",
            or_not_set(info.manifest_address.as_deref()),
            or_not_set(info.srv_domain.as_deref())
        )?;
    }
    if info.candidates.is_empty() {
        writeln!(out, "  no server found")?;
    }
    for (n, c) in info.candidates.iter().enumerate() {
        writeln!(out, "  {}. {} ({})", n + 1, c.address, found_by(c))?;
    }
    for s in &info.skipped {
        writeln!(out, "  skipped: {}", shown(&s.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapwing_discovery::ServerSource;

    #[test]
    fn a_candidate_names_how_it_was_found_once() {
        let candidate = |source, detail: &str| lapwing_discovery::Candidate {
            address: "192.0.2.7:4711".parse().expect("address"),
            host: "lap.acme.example".into(),
            source,
            detail: detail.into(),
            ttl: None,
        };
        assert_eq!(
            found_by(&candidate(ServerSource::Manifest, "manifest address")),
            "manifest address"
        );
        assert_eq!(
            found_by(&candidate(
                ServerSource::Override,
                "manual override (all products)"
            )),
            "manual override (all products)"
        );
        assert_eq!(found_by(&candidate(ServerSource::Srv, "")), "srv");
    }
}

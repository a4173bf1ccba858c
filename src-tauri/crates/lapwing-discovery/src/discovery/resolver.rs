//! Setting up the resolver from [`DnsConfig`]: the system's configuration or one given name
//! server, the retries within the lookup bound, and the search domains unicast DNS-SD browses.

use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::Name;

use crate::address::validate_name;
use crate::config::DnsConfig;

pub(super) fn build_resolver(
    dns: &DnsConfig,
    timeout: Duration,
) -> Result<(TokioResolver, Vec<Name>), String> {
    let (config, mut options) = match dns {
        DnsConfig::System => system_config()?,
        DnsConfig::Nameserver { address, search } => {
            let mut server = NameServerConfig::udp_and_tcp(address.ip());
            for connection in &mut server.connections {
                connection.port = address.port();
            }
            let mut names = Vec::with_capacity(search.len());
            for domain in search {
                validate_name(domain).map_err(|p| format!("search domain {domain:?}: {p}"))?;
                let mut name = Name::from_ascii(domain)
                    .map_err(|e| format!("search domain {domain:?}: {e}"))?;
                name.set_fqdn(true);
                names.push(name);
            }
            let config = ResolverConfig::from_parts(None, names, vec![server]);
            let mut options = ResolverOpts::default();
            // A test's answers come from its own server only, never from /etc/hosts.
            options.use_hosts_file = ResolveHosts::Never;
            (config, options)
        }
    };
    // Two tries within the bound, so one lost UDP datagram is not a failure; the hard bound
    // is the tokio timeout around each lookup.
    options.timeout = timeout / 2;
    options.attempts = 2;
    options.ip_strategy = LookupIpStrategy::Ipv6AndIpv4;
    let search = search_domains(&config);
    let resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .map_err(|e| format!("cannot set up the resolver: {e}"))?;
    Ok((resolver, search))
}

#[cfg(any(unix, windows))]
fn system_config() -> Result<(ResolverConfig, ResolverOpts), String> {
    hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))
}

#[cfg(not(any(unix, windows)))]
fn system_config() -> Result<(ResolverConfig, ResolverOpts), String> {
    Err("no system DNS configuration on this platform".to_owned())
}

/// The domains unicast DNS-SD browses: the search list (which hickory fills from `search`,
/// else `domain`, as the system resolver does), absolute, without duplicates.
fn search_domains(config: &ResolverConfig) -> Vec<Name> {
    let mut out: Vec<Name> = Vec::new();
    for name in config.search() {
        let mut name = name.clone();
        name.set_fqdn(true);
        if !name.is_root() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

// hickory parses resolv.conf on Unix only (not on Windows, nor on Apple systems).
#[cfg(all(test, unix, not(target_vendor = "apple")))]
mod tests {
    use super::*;
    use crate::discovery::names::display_name;
    use hickory_resolver::system_conf::parse_resolv_conf;

    #[test]
    fn search_domains_come_from_search_else_domain() {
        let (config, _) =
            parse_resolv_conf("nameserver 127.0.0.1\nsearch corp.test lab.corp.test corp.test\n")
                .expect("valid resolv.conf");
        let names: Vec<String> = search_domains(&config).iter().map(display_name).collect();
        assert_eq!(names, vec!["corp.test", "lab.corp.test"]);

        let (config, _) = parse_resolv_conf("nameserver 127.0.0.1\ndomain office.test\n")
            .expect("valid resolv.conf");
        let names: Vec<String> = search_domains(&config).iter().map(display_name).collect();
        assert_eq!(names, vec!["office.test"]);
    }
}

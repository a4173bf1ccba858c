//! The lookups: host names, SRV, unicast DNS-SD (hickory-resolver) and mDNS (mdns-sd), each
//! bounded by a timeout and failing on its own.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mdns_sd::{IfKind, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent};

use crate::address::{Host, parse_host_port, validate_name};
use crate::error::DiscoveryError;
use crate::model::{Candidate, Discovered, ServerSettings, ServerSource, plan};
use crate::srv::{SrvRecord, SrvRng, order_srv};

/// The DNS-SD service type of LAP (draft §3.2 and §5: service name "lap", UDP).
pub const SERVICE_LABELS: &str = "_lap._udp";
/// The same, as mDNS names it.
pub const MDNS_SERVICE_TYPE: &str = "_lap._udp.local.";
/// The default bound on one lookup.
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Which DNS servers to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsConfig {
    /// The system's configuration (`/etc/resolv.conf` on Unix, the registry on Windows):
    /// its name servers, and its search domains for unicast DNS-SD.
    System,
    /// One name server at an explicit address and port (tests, or a diagnostic that asks a
    /// given server), with the search domains to browse for unicast DNS-SD.
    Nameserver {
        address: SocketAddr,
        search: Vec<String>,
    },
}

/// mDNS browsing on the local link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsConfig {
    /// 5353 in real use (RFC 6762); tests use their own port so that they neither see nor
    /// disturb anything else on the machine.
    pub port: u16,
    /// How long the first browse collects answers before they are used (a browse cannot
    /// know when everyone has answered); later calls read the running browse at once. The
    /// default, 1.5 s, covers the second query: responders answer within 20–120 ms, but
    /// multicast a record at most once a second (RFC 6762 §6), so a first query that
    /// follows another host's by less than a second is answered only after our second
    /// query, which mdns-sd sends 1 s after the first. Measured here: answered 60 ms after
    /// the first query normally, about 1.07 s after it inside the one-second hold-off.
    pub browse_window: Duration,
    /// Interface names to use; empty means all (loopback included).
    pub interfaces: Vec<String>,
}

impl Default for MdnsConfig {
    fn default() -> Self {
        Self {
            port: 5353,
            browse_window: Duration::from_millis(1500),
            interfaces: Vec::new(),
        }
    }
}

/// How discovery is set up. `Default` is what the engine uses: the system's DNS, mDNS on
/// all interfaces, 2 s per lookup, SRV order seeded from the OS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    pub dns: DnsConfig,
    /// The bound on each lookup (one SRV, PTR or address query, with its retries).
    pub lookup_timeout: Duration,
    /// `None` turns mDNS off.
    pub mdns: Option<MdnsConfig>,
    /// A fixed seed for the SRV weighted order (tests); `None` seeds from the OS.
    pub srv_seed: Option<u64>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            dns: DnsConfig::System,
            lookup_timeout: DEFAULT_LOOKUP_TIMEOUT,
            mdns: Some(MdnsConfig::default()),
            srv_seed: None,
        }
    }
}

/// Answers "which servers, in which order, and how was each found" for a product.
#[derive(Debug)]
pub struct Discovery {
    // A machine without DNS configuration can still use literal addresses and mDNS, so the
    // reason is kept and reported per lookup instead of failing construction.
    resolver: Result<TokioResolver, String>,
    search: Vec<Name>,
    timeout: Duration,
    mdns: Option<Mdns>,
    rng: Mutex<SrvRng>,
}

struct Mdns {
    config: MdnsConfig,
    // Started by the first browse and kept running: the daemon keeps querying (RFC 6762
    // §5.2, backing off to once an hour) and hears announcements and goodbyes, so later
    // calls read an up-to-date view at once instead of waiting a window each time, and a
    // machine that never browses never opens the mDNS port.
    browser: tokio::sync::Mutex<Option<Browser>>,
}

/// One running browse for `_lap._udp.local.` and what it has seen so far.
struct Browser {
    daemon: ServiceDaemon,
    // Answers are complete enough to read once the window after the first query is over.
    ready_at: tokio::time::Instant,
    view: Arc<Mutex<MdnsView>>,
}

/// Instances by full name; `None` while found but not yet resolved to host and addresses.
type MdnsView = BTreeMap<String, Option<Box<ResolvedService>>>;

impl std::fmt::Debug for Mdns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mdns")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for Mdns {
    fn drop(&mut self) {
        if let Some(browser) = self.browser.get_mut().take() {
            // The daemon thread exits once told, which closes the event channel and so ends
            // the thread that drains it; nothing to wait for.
            let _ = browser.daemon.shutdown();
        }
    }
}

impl Discovery {
    pub fn new(config: DiscoveryConfig) -> Self {
        let timeout = config.lookup_timeout;
        let (resolver, search) = match build_resolver(&config.dns, timeout) {
            Ok((resolver, search)) => (Ok(resolver), search),
            Err(reason) => (Err(reason), Vec::new()),
        };
        let rng = config.srv_seed.map_or_else(SrvRng::from_os, SrvRng::seeded);
        Self {
            resolver,
            search,
            timeout,
            mdns: config.mdns.map(|config| Mdns {
                config,
                browser: tokio::sync::Mutex::new(None),
            }),
            rng: Mutex::new(rng),
        }
    }

    /// The search domains unicast DNS-SD browses, as configured.
    pub fn search_domains(&self) -> Vec<String> {
        self.search.iter().map(display_name).collect()
    }

    /// All servers for one product, in the order to try them: the manual choice (see
    /// [`crate::model`]'s precedence table), then SRV, then DNS-SD (unicast in each search
    /// domain, then mDNS), then the manifest's address. The sources are looked up at the
    /// same time, so this takes as long as the slowest one, not their sum (with mDNS on, the
    /// first call on a `Discovery` takes at least the browse window; keep one `Discovery`
    /// for the life of the process).
    pub async fn candidates(&self, settings: &ServerSettings) -> Discovered {
        let plan = plan(settings);
        let mut out = plan.notes;
        let manual = async {
            match &plan.manual {
                Some(m) => self.resolve(m.text, m.source, m.detail).await,
                None => Discovered::default(),
            }
        };
        if !plan.automatic {
            out.append(manual.await);
            return out;
        }
        let srv = async {
            match settings.srv_domain.as_deref().map(str::trim) {
                Some(domain) if !domain.is_empty() => self.srv(domain).await,
                _ => Discovered::default(),
            }
        };
        let manifest = async {
            match settings.manifest_address.as_deref().map(str::trim) {
                Some(text) if !text.is_empty() => {
                    self.resolve(text, ServerSource::Manifest, "manifest address")
                        .await
                }
                _ => Discovered::default(),
            }
        };
        let (manual, srv, dns_sd, manifest) = tokio::join!(manual, srv, self.dns_sd(), manifest);
        out.append(manual);
        out.append(srv);
        out.append(dns_sd);
        out.append(manifest);
        out
    }

    /// One `HOST:PORT` text: validated, its name resolved (IPv6 addresses first, then IPv4),
    /// one candidate per address. `detail` says where the text came from.
    pub async fn resolve(&self, text: &str, source: ServerSource, detail: &str) -> Discovered {
        let host_port = match parse_host_port(text) {
            Ok(hp) => hp,
            Err(e) => return Discovered::only_skipped(source, text.trim(), e),
        };
        let shown = host_port.host.to_string();
        let detail = format!("{detail}: {host_port}");
        match &host_port.host {
            Host::Ip(ip) => Discovered {
                candidates: vec![Candidate {
                    address: SocketAddr::new(*ip, host_port.port),
                    host: shown,
                    source,
                    detail,
                }],
                skipped: Vec::new(),
            },
            Host::Name(name) => match self.lookup_ip(name).await {
                Ok(ips) => Discovered {
                    candidates: ips
                        .into_iter()
                        .map(|ip| Candidate {
                            address: SocketAddr::new(ip, host_port.port),
                            host: trim_dot(name).to_owned(),
                            source,
                            detail: detail.clone(),
                        })
                        .collect(),
                    skipped: Vec::new(),
                },
                Err(e) => Discovered::only_skipped(source, text.trim(), e),
            },
        }
    }

    /// SRV `_lap._udp.<domain>`: targets in RFC 2782 order, each with all its addresses.
    pub async fn srv(&self, domain: &str) -> Discovered {
        let name = match service_name(domain) {
            Ok(name) => name,
            Err(e) => return Discovered::only_skipped(ServerSource::Srv, domain, e),
        };
        let label = format!("SRV {}", display_name(&name));
        self.srv_at(&name, ServerSource::Srv, &label).await
    }

    /// DNS-SD browse for `_lap._udp`: unicast in each search domain (PTR, then each
    /// instance's SRV), then mDNS on the local link when enabled.
    pub async fn dns_sd(&self) -> Discovered {
        let unicast = join_all(self.search.iter().map(|d| self.unicast_dns_sd(d)));
        let (unicast, mdns) = tokio::join!(unicast, self.mdns_browse());
        let mut out = Discovered::default();
        for part in unicast {
            out.append(part);
        }
        out.append(mdns);
        out
    }

    async fn unicast_dns_sd(&self, domain: &Name) -> Discovered {
        let source = ServerSource::DnsSd;
        let browse = match Name::from_ascii(SERVICE_LABELS).and_then(|n| n.append_domain(domain)) {
            Ok(mut name) => {
                name.set_fqdn(true);
                name
            }
            Err(e) => {
                return Discovered::only_skipped(
                    source,
                    display_name(domain),
                    DiscoveryError::Domain {
                        name: display_name(domain),
                        message: e.to_string(),
                    },
                );
            }
        };
        let shown = display_name(&browse);
        let instances = match self.lookup(&browse, RecordType::PTR).await {
            Ok(records) => {
                let mut names: Vec<Name> = records
                    .into_iter()
                    .filter_map(|r| match r {
                        RData::PTR(ptr) => Some(ptr.0),
                        _ => None,
                    })
                    .collect();
                // PTR answers come in no defined order; sorting makes the list stable
                // between runs (the order among DNS-SD instances carries no preference).
                names.sort();
                names.dedup();
                names
            }
            Err(e) => return Discovered::only_skipped(source, shown, e),
        };
        let parts = join_all(instances.iter().map(|instance| {
            let label = format!(
                "DNS-SD {} (search domain {})",
                display_name(instance),
                display_name(domain)
            );
            async move { self.srv_at(instance, source, &label).await }
        }))
        .await;
        let mut out = Discovered::default();
        for part in parts {
            out.append(part);
        }
        out
    }

    /// SRV at `name`, ordered, every target resolved. Shared by SRV and unicast DNS-SD.
    async fn srv_at(&self, name: &Name, source: ServerSource, label: &str) -> Discovered {
        let shown = display_name(name);
        let records: Vec<SrvRecord> = match self.lookup(name, RecordType::SRV).await {
            Ok(answers) => answers
                .into_iter()
                .filter_map(|r| match r {
                    RData::SRV(srv) => Some(SrvRecord {
                        priority: srv.priority,
                        weight: srv.weight,
                        port: srv.port,
                        target: if srv.target.is_root() {
                            ".".to_owned()
                        } else {
                            display_name(&srv.target)
                        },
                    }),
                    _ => None,
                })
                .collect(),
            Err(e) => return Discovered::only_skipped(source, shown, e),
        };
        let mut out = Discovered::default();
        // RFC 2782's "." target: the service is decidedly not available here. As with RFC
        // 7505's null MX, that is a statement only when it is the whole answer; a "." among
        // real targets is a zone mistake, noted and passed over.
        if !records.is_empty() && records.iter().all(SrvRecord::is_not_available_marker) {
            out.skip(
                source,
                shown.clone(),
                DiscoveryError::ServiceNotAvailable { name: shown },
            );
            return out;
        }
        if records.iter().any(SrvRecord::is_not_available_marker) {
            out.skip(
                source,
                format!("{shown} target \".\""),
                DiscoveryError::DotAmongTargets {
                    name: shown.clone(),
                },
            );
        }
        let usable: Vec<SrvRecord> = records
            .into_iter()
            .filter(|r| !r.is_not_available_marker())
            .collect();
        if usable.is_empty() {
            out.skip(
                source,
                shown.clone(),
                DiscoveryError::NoRecords {
                    name: shown,
                    rtype: "SRV",
                },
            );
            return out;
        }
        let ordered = {
            // Poisoning cannot leave the generator in a broken state (it is one u64), so a
            // panic elsewhere while it was held does not matter here.
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            order_srv(&usable, &mut rng)
        };
        // Targets are resolved concurrently (join_all keeps the SRV order), as absolute names:
        // a target is never looked for under the machine's search domains.
        let resolved = join_all(
            ordered
                .iter()
                .map(|r| async move { self.lookup_ip(&format!("{}.", r.target)).await }),
        )
        .await;
        for (record, addresses) in ordered.iter().zip(resolved) {
            let detail = format!(
                "{label} priority {} weight {} → {}:{}",
                record.priority, record.weight, record.target, record.port
            );
            match addresses {
                Ok(ips) => {
                    for ip in ips {
                        out.push(Candidate {
                            address: SocketAddr::new(ip, record.port),
                            host: record.target.clone(),
                            source,
                            detail: detail.clone(),
                        });
                    }
                }
                Err(e) => out.skip(source, format!("{}:{}", record.target, record.port), e),
            }
        }
        out
    }

    /// mDNS instances of `_lap._udp.local.`. The first call starts a browse that keeps
    /// running and waits for its window; later calls (and calls made meanwhile) read the
    /// browse's current view, waiting only for what is left of the first window. Instances
    /// by name; each one's addresses IPv6 first, then IPv4.
    async fn mdns_browse(&self) -> Discovered {
        let source = ServerSource::DnsSd;
        let Some(mdns) = &self.mdns else {
            return Discovered::default();
        };
        let (ready_at, view) = {
            let mut guard = mdns.browser.lock().await;
            if guard.is_none() {
                match start_browser(&mdns.config) {
                    Ok(browser) => *guard = Some(browser),
                    Err(e) => return Discovered::only_skipped(source, MDNS_SERVICE_TYPE, e),
                }
            }
            let Some(browser) = guard.as_ref() else {
                return Discovered::default();
            };
            (browser.ready_at, Arc::clone(&browser.view))
        };
        tokio::time::sleep_until(ready_at).await;
        let snapshot: MdnsView = view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();

        let mut out = Discovered::default();
        if snapshot.is_empty() {
            out.skip(
                source,
                trim_dot(MDNS_SERVICE_TYPE),
                DiscoveryError::Mdns(format!(
                    "no instance answered within {} ms",
                    mdns.config.browse_window.as_millis()
                )),
            );
        }
        for (fullname, service) in snapshot {
            let Some(service) = service else {
                out.skip(
                    source,
                    trim_dot(&fullname),
                    DiscoveryError::Mdns(
                        "instance seen, but its host and addresses have not arrived".to_owned(),
                    ),
                );
                continue;
            };
            let host = trim_dot(&service.host).to_owned();
            let detail = format!(
                "mDNS {} → {}:{}",
                trim_dot(&service.fullname),
                host,
                service.port
            );
            let mut addresses: Vec<SocketAddr> = service
                .addresses
                .iter()
                .map(|ip| socket_addr(ip, service.port))
                .collect();
            // The set has no order; the same preference as for DNS answers, then stable.
            addresses.sort_by_key(|a| (a.is_ipv4(), *a));
            for address in addresses {
                out.push(Candidate {
                    address,
                    host: host.clone(),
                    source,
                    detail: detail.clone(),
                });
            }
        }
        out
    }

    fn resolver(&self) -> Result<&TokioResolver, DiscoveryError> {
        self.resolver
            .as_ref()
            .map_err(|reason| DiscoveryError::NoResolver(reason.clone()))
    }

    /// One query for `rtype` at an absolute name, bounded by the lookup timeout.
    async fn lookup(&self, name: &Name, rtype: RecordType) -> Result<Vec<RData>, DiscoveryError> {
        let resolver = self.resolver()?;
        let shown = display_name(name);
        match tokio::time::timeout(self.timeout, resolver.lookup(name.clone(), rtype)).await {
            Err(_elapsed) => Err(DiscoveryError::Timeout {
                name: shown,
                timeout: self.timeout,
            }),
            Ok(Err(e)) => Err(dns_error(&shown, rtype_word(rtype), &e, self.timeout)),
            Ok(Ok(lookup)) => {
                let answers: Vec<RData> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| r.data.clone())
                    .collect();
                if answers.is_empty() {
                    Err(DiscoveryError::NoRecords {
                        name: shown,
                        rtype: rtype_word(rtype),
                    })
                } else {
                    Ok(answers)
                }
            }
        }
    }

    /// A host name's addresses, IPv6 first, then IPv4 (RFC 6724's default preference), both
    /// asked at once. A name without a trailing dot goes through the search list as the
    /// system resolver would take it (a user's `licserver:4711`).
    async fn lookup_ip(&self, name: &str) -> Result<Vec<IpAddr>, DiscoveryError> {
        let resolver = self.resolver()?;
        match tokio::time::timeout(self.timeout, resolver.lookup_ip(name)).await {
            Err(_elapsed) => Err(DiscoveryError::Timeout {
                name: trim_dot(name).to_owned(),
                timeout: self.timeout,
            }),
            Ok(Err(e)) => Err(dns_error(trim_dot(name), "A/AAAA", &e, self.timeout)),
            Ok(Ok(ips)) => {
                let mut out: Vec<IpAddr> = Vec::new();
                for ip in ips.iter() {
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
                if out.is_empty() {
                    Err(DiscoveryError::NoRecords {
                        name: trim_dot(name).to_owned(),
                        rtype: "A/AAAA",
                    })
                } else {
                    Ok(out)
                }
            }
        }
    }
}

fn build_resolver(
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

fn start_browser(config: &MdnsConfig) -> Result<Browser, DiscoveryError> {
    let daemon = ServiceDaemon::new_with_port(config.port)
        .map_err(|e| DiscoveryError::Mdns(format!("cannot start: {e}")))?;
    let fail = |daemon: &ServiceDaemon, message: String| {
        let _ = daemon.shutdown();
        DiscoveryError::Mdns(message)
    };
    if !config.interfaces.is_empty() {
        let names: Vec<IfKind> = config
            .interfaces
            .iter()
            .map(|n| IfKind::Name(n.clone()))
            .collect();
        if let Err(e) = daemon
            .disable_interface(IfKind::All)
            .and_then(|()| daemon.enable_interface(names))
        {
            return Err(fail(&daemon, format!("cannot select interfaces: {e}")));
        }
    }
    let events = match daemon.browse(MDNS_SERVICE_TYPE) {
        Ok(events) => events,
        Err(e) => return Err(fail(&daemon, format!("cannot browse: {e}"))),
    };
    let ready_at = tokio::time::Instant::now() + config.browse_window;
    let view: Arc<Mutex<MdnsView>> = Arc::default();
    let writer = Arc::clone(&view);
    // A plain thread, not a task: mdns-sd's channel blocks, and the view must keep being
    // updated whichever runtime (if any) the callers run on. It ends when the daemon does.
    let spawned = std::thread::Builder::new()
        .name("lapwing-mdns-view".to_owned())
        .spawn(move || {
            while let Ok(event) = events.recv() {
                let mut view = writer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match event {
                    ServiceEvent::ServiceFound(_, fullname) => {
                        view.entry(fullname).or_default();
                    }
                    ServiceEvent::ServiceResolved(service) => {
                        view.insert(service.fullname.clone(), Some(service));
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => {
                        view.remove(&fullname);
                    }
                    _ => {}
                }
            }
        });
    if let Err(e) = spawned {
        return Err(fail(&daemon, format!("cannot start the event thread: {e}")));
    }
    Ok(Browser {
        daemon,
        ready_at,
        view,
    })
}

fn socket_addr(ip: &ScopedIp, port: u16) -> SocketAddr {
    match ip {
        ScopedIp::V6(v6) if v6.addr().is_unicast_link_local() => {
            // A link-local address means nothing without its interface.
            SocketAddr::V6(SocketAddrV6::new(*v6.addr(), port, 0, v6.scope_id().index))
        }
        other => SocketAddr::new(other.to_ip_addr(), port),
    }
}

fn service_name(domain: &str) -> Result<Name, DiscoveryError> {
    let bare = domain.trim();
    validate_name(bare).map_err(|p| DiscoveryError::Domain {
        name: bare.to_owned(),
        message: p.to_string(),
    })?;
    // Absolute: the manifest names the vendor's domain, which must not be tried under the
    // machine's search domains as well.
    Name::from_ascii(format!("{SERVICE_LABELS}.{}.", trim_dot(bare))).map_err(|e| {
        DiscoveryError::Domain {
            name: bare.to_owned(),
            message: e.to_string(),
        }
    })
}

fn dns_error(name: &str, rtype: &'static str, e: &NetError, timeout: Duration) -> DiscoveryError {
    if e.is_no_records_found() {
        DiscoveryError::NoRecords {
            name: name.to_owned(),
            rtype,
        }
    } else if matches!(e, NetError::Timeout) {
        DiscoveryError::Timeout {
            name: name.to_owned(),
            timeout,
        }
    } else {
        DiscoveryError::Lookup {
            name: name.to_owned(),
            message: e.to_string(),
        }
    }
}

fn rtype_word(rtype: RecordType) -> &'static str {
    match rtype {
        RecordType::SRV => "SRV",
        RecordType::PTR => "PTR",
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        _ => "DNS",
    }
}

fn display_name(name: &Name) -> String {
    let text = name.to_string();
    trim_dot(&text).to_owned()
}

fn trim_dot(name: &str) -> &str {
    if name.len() > 1 {
        name.strip_suffix('.').unwrap_or(name)
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn service_names_are_absolute() {
        let name = service_name("acme.example.").expect("valid domain");
        assert!(name.is_fqdn());
        assert_eq!(name.to_string(), "_lap._udp.acme.example.");
        assert_eq!(
            service_name(" acme.example ")
                .expect("valid domain")
                .to_string(),
            "_lap._udp.acme.example."
        );
        assert!(matches!(
            service_name("acme example"),
            Err(DiscoveryError::Domain { .. })
        ));
    }

    /// The engine runs discovery inside spawned tasks.
    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let d = Discovery::new(DiscoveryConfig {
            mdns: None,
            ..DiscoveryConfig::default()
        });
        let settings = ServerSettings::default();
        send(&d.candidates(&settings));
        send(&d.dns_sd());
        send(&d.srv("acme.example"));
    }

    #[tokio::test]
    async fn literal_addresses_need_no_dns() {
        // The name server is a closed port: nothing may depend on it.
        let discovery = Discovery::new(DiscoveryConfig {
            dns: DnsConfig::Nameserver {
                address: "127.0.0.1:9".parse().expect("valid literal"),
                search: vec![],
            },
            lookup_timeout: Duration::from_millis(300),
            mdns: None,
            srv_seed: Some(1),
        });
        let settings = ServerSettings {
            product_override: Some("[::1]:4711".into()),
            manifest_address: Some("127.0.0.1:4712".into()),
            ..ServerSettings::default()
        };
        let found = discovery.candidates(&settings).await;
        let got: Vec<(String, ServerSource)> = found
            .candidates
            .iter()
            .map(|c| (c.address.to_string(), c.source))
            .collect();
        assert_eq!(
            got,
            vec![
                ("[::1]:4711".into(), ServerSource::Override),
                ("127.0.0.1:4712".into(), ServerSource::Manifest)
            ]
        );
        assert!(found.skipped.is_empty(), "{:?}", found.skipped);
        assert_eq!(found.candidates[0].host, "[::1]");
        assert_eq!(
            found.candidates[0].detail,
            "manual override for this product: [::1]:4711"
        );
    }

    /// No usable DNS configuration: every DNS-based source says so, literals still work.
    #[tokio::test]
    async fn without_a_resolver_literals_still_work() {
        let discovery = Discovery::new(DiscoveryConfig {
            dns: DnsConfig::Nameserver {
                address: "127.0.0.1:9".parse().expect("valid literal"),
                search: vec!["not a domain".into()],
            },
            lookup_timeout: Duration::from_millis(300),
            mdns: None,
            srv_seed: Some(1),
        });
        let settings = ServerSettings {
            srv_domain: Some("acme.example".into()),
            manifest_address: Some("127.0.0.1:4712".into()),
            ..ServerSettings::default()
        };
        let found = discovery.candidates(&settings).await;
        assert_eq!(found.candidates.len(), 1);
        assert_eq!(found.candidates[0].source, ServerSource::Manifest);
        assert_eq!(found.skipped.len(), 1);
        assert_eq!(
            found.skipped[0].to_string(),
            "srv _lap._udp.acme.example: no DNS resolver: search domain \"not a domain\": ' ' \
             cannot occur in a host name"
        );
    }

    #[tokio::test]
    async fn bad_settings_are_reported_not_dropped() {
        let discovery = Discovery::new(DiscoveryConfig {
            dns: DnsConfig::Nameserver {
                address: "127.0.0.1:9".parse().expect("valid literal"),
                search: vec![],
            },
            lookup_timeout: Duration::from_millis(300),
            mdns: None,
            srv_seed: Some(1),
        });
        let settings = ServerSettings {
            global_override: Some("lap.example".into()),
            srv_domain: Some("bad domain".into()),
            manifest_address: Some("127.0.0.1:4712".into()),
            ..ServerSettings::default()
        };
        let found = discovery.candidates(&settings).await;
        assert_eq!(found.candidates.len(), 1);
        assert_eq!(found.candidates[0].source, ServerSource::Manifest);
        let reasons: Vec<String> = found.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons[0].starts_with("override lap.example: ") && reasons[0].contains("missing port"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("srv bad domain: ") && reasons[1].contains("' ' cannot occur"),
            "{reasons:?}"
        );
    }
}

//! mDNS on the local link: a browse for `_lap._udp.local.` during each discovery (calls made
//! meanwhile share it), closed at the end of its window, and the candidates read from what
//! it saw. While no discovery runs, the app holds no mDNS socket.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV6};
use std::sync::Mutex;

use std::time::Duration;

use futures_util::future::{BoxFuture, Shared, WeakShared};
use futures_util::{FutureExt, Stream};
use mdns_sd::{IfKind, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent};
use tokio::sync::watch;

use super::names::trim_dot;
use crate::config::{MAX_CANDIDATES, MdnsConfig};
use crate::error::DiscoveryError;
use crate::model::{Candidate, Discovered, ServerSource};

/// The DNS-SD service type of LAP ([`super::SERVICE_LABELS`]), as mDNS names it.
pub const MDNS_SERVICE_TYPE: &str = "_lap._udp.local.";

/// How long an mDNS answer holds: RFC 6762 §10's TTL for records that name a host (SRV, A,
/// AAAA), which mdns-sd uses and does not report per service.
pub const MDNS_HOST_TTL: Duration = Duration::from_secs(120);

/// One browse: what it saw in its window, or why it could not run.
type BrowseResult = Result<MdnsView, DiscoveryError>;
type SharedBrowse = Shared<BoxFuture<'static, BrowseResult>>;

pub(super) struct Mdns {
    config: MdnsConfig,
    // The browse in progress, if any. Weak: when every caller has stopped waiting (they
    // finished, or their discovery ran out of time) the browse is dropped, which shuts its
    // daemon down, so no socket outlives the discoveries that need it.
    running: Mutex<Option<Running>>,
}

/// The browse in progress: its end (weak, see above) and its view as it grows.
struct Running {
    browse: WeakShared<BoxFuture<'static, BrowseResult>>,
    view: watch::Receiver<MdnsView>,
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

impl Mdns {
    pub(super) fn new(config: MdnsConfig) -> Self {
        Self {
            config,
            running: Mutex::new(None),
        }
    }

    /// The browse to wait for, with its view as it grows: the one in progress, else a new
    /// one.
    fn shared_browse(&self) -> (SharedBrowse, watch::Receiver<MdnsView>) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(current) = running.as_ref()
            && let Some(browse) = current.browse.upgrade()
            && browse.peek().is_none()
        {
            return (browse, current.view.clone());
        }
        let (sender, view) = watch::channel(MdnsView::new());
        let browse = browse_once(self.config.clone(), sender).boxed().shared();
        *running = browse.downgrade().map(|weak| Running {
            browse: weak,
            view: view.clone(),
        });
        (browse, view)
    }
}

/// A running mDNS daemon, shut down when dropped: by the end of the browse window, or
/// earlier when nobody waits for the browse any more.
struct Daemon(ServiceDaemon);

impl Drop for Daemon {
    fn drop(&mut self) {
        // The daemon thread exits once told and closes its sockets; that closes the event
        // channel and so ends the thread that drains it. Nothing to wait for.
        let _ = self.0.shutdown();
    }
}

/// Browses for one window and stops: mDNS is open only while a discovery runs.
async fn browse_once(config: MdnsConfig, view: watch::Sender<MdnsView>) -> BrowseResult {
    let reader = view.subscribe();
    let daemon = start_browser(&config, view)?;
    tokio::time::sleep(config.browse_window).await;
    let snapshot = reader.borrow().clone();
    drop(daemon);
    Ok(snapshot)
}

impl Mdns {
    /// mDNS instances of `_lap._udp.local.`: a browse for the configured window, shared by
    /// the calls made meanwhile, and closed after it. Instances by name (at most
    /// [`MAX_CANDIDATES`]); each one's addresses IPv6 first, then IPv4.
    pub(super) async fn browse(&self) -> Discovered {
        let (browse, _) = self.shared_browse();
        self.answer(browse.await, true)
    }

    /// The same browse as [`Mdns::browse`], seen as it goes: the instances resolved so far
    /// each time more are (cumulative, without notes), then the browse's answer at the end
    /// of its window. Dropping the stream stops waiting for the browse (see `running`).
    pub(super) fn progress(&self) -> impl Stream<Item = Discovered> + Send + '_ {
        enum Step {
            Browsing(SharedBrowse, watch::Receiver<MdnsView>),
            Over,
        }
        let (browse, mut view) = self.shared_browse();
        // A browse already running may have seen instances: they are the first report.
        view.mark_changed();
        futures_util::stream::unfold(Step::Browsing(browse, view), move |step| async move {
            let Step::Browsing(mut browse, mut view) = step else {
                return None;
            };
            tokio::select! {
                biased;
                result = &mut browse => Some((self.answer(result, true), Step::Over)),
                changed = view.changed() => {
                    if changed.is_ok() {
                        let snapshot = view.borrow_and_update().clone();
                        Some((self.answer(Ok(snapshot), false), Step::Browsing(browse, view)))
                    } else {
                        // The view's writer ended (the daemon is gone): the answer is due.
                        let result = browse.await;
                        Some((self.answer(result, true), Step::Over))
                    }
                }
            }
        })
    }

    /// Candidates from what a browse saw; `last`: the end of its window, when what did not
    /// answer or resolve is worth a note.
    fn answer(&self, result: BrowseResult, last: bool) -> Discovered {
        let source = ServerSource::DnsSd;
        let mdns = self;
        let snapshot = match result {
            Ok(snapshot) => snapshot,
            Err(e) if last => return Discovered::only_skipped(source, MDNS_SERVICE_TYPE, e),
            Err(_) => return Discovered::default(),
        };

        let mut out = Discovered::default();
        if snapshot.is_empty() && last {
            out.skip(
                source,
                trim_dot(MDNS_SERVICE_TYPE),
                DiscoveryError::Mdns(format!(
                    "no instance answered within {} ms",
                    mdns.config.browse_window.as_millis()
                )),
            );
        }
        if snapshot.len() > MAX_CANDIDATES && last {
            let left_out: Vec<&str> = snapshot
                .keys()
                .skip(MAX_CANDIDATES)
                .map(|name| trim_dot(name))
                .collect();
            out.skip(
                source,
                left_out.join(", "),
                DiscoveryError::TooMany {
                    limit: MAX_CANDIDATES,
                },
            );
        }
        for (fullname, service) in snapshot.into_iter().take(MAX_CANDIDATES) {
            let Some(service) = service else {
                if !last {
                    continue;
                }
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
                    ttl: Some(MDNS_HOST_TTL),
                });
            }
        }
        out
    }
}

fn start_browser(
    config: &MdnsConfig,
    view: watch::Sender<MdnsView>,
) -> Result<Daemon, DiscoveryError> {
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
    let writer = view;
    // A plain thread, not a task: mdns-sd's channel blocks, and the view must keep being
    // updated whichever runtime the callers run on. It ends when the daemon does.
    let spawned = std::thread::Builder::new()
        .name("lapwing-mdns-view".to_owned())
        .spawn(move || {
            while let Ok(event) = events.recv() {
                // Readers are woken only by what changes the candidates.
                match event {
                    ServiceEvent::ServiceFound(_, fullname) => {
                        writer.send_if_modified(|view| {
                            view.entry(fullname).or_default();
                            false
                        });
                    }
                    ServiceEvent::ServiceResolved(service) => {
                        writer.send_modify(|view| {
                            view.insert(service.fullname.clone(), Some(service));
                        });
                    }
                    ServiceEvent::ServiceRemoved(_, fullname) => {
                        writer.send_if_modified(|view| view.remove(&fullname).is_some());
                    }
                    _ => {}
                }
            }
        });
    if let Err(e) = spawned {
        return Err(fail(&daemon, format!("cannot start the event thread: {e}")));
    }
    Ok(Daemon(daemon))
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

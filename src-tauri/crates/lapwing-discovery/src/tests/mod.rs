//! Tests against real servers: `dnsmasq` on loopback for DNS SRV and unicast DNS-SD, and
//! mdns-sd responders for mDNS.

mod dns;
mod mdns;

/// The zone the DNS tests are answered from. Answers are loopback addresses only; nothing
/// is ever sent to them.
pub(super) fn dns_zone() -> Vec<&'static str> {
    vec![
        // acme.test: two targets at priority 10 (weights 60 and 20), a backup at 20.
        "--srv-host=_lap._udp.acme.test,lap1.acme.test,4711,10,60",
        "--srv-host=_lap._udp.acme.test,lap2.acme.test,4712,10,20",
        "--srv-host=_lap._udp.acme.test,backup.acme.test,4713,20,0",
        "--host-record=lap1.acme.test,127.0.0.2,::1",
        "--host-record=lap2.acme.test,127.0.0.3",
        "--host-record=backup.acme.test,127.0.0.4",
        // The manifest's fixed address, by name.
        "--host-record=lap.acme.test,127.0.0.7",
        // gone.test: the RFC 2782 "service not available" record (no target: ".").
        "--srv-host=_lap._udp.gone.test",
        // mixed.test: "." next to a real target (a zone mistake).
        "--srv-host=_lap._udp.mixed.test",
        "--srv-host=_lap._udp.mixed.test,ok.partial.test,4730,5,10",
        // partial.test: one target that does not resolve, one that does.
        "--srv-host=_lap._udp.partial.test,missing.partial.test,4720,1,0",
        "--srv-host=_lap._udp.partial.test,ok.partial.test,4721,2,0",
        "--host-record=ok.partial.test,127.0.0.8",
        // corp.test: unicast DNS-SD, two instances (RFC 6763 PTR → SRV, empty TXT).
        "--ptr-record=_lap._udp.corp.test,lab._lap._udp.corp.test",
        "--ptr-record=_lap._udp.corp.test,annex._lap._udp.corp.test",
        "--srv-host=lab._lap._udp.corp.test,lapsd.corp.test,4800,0,0",
        "--srv-host=annex._lap._udp.corp.test,annex.corp.test,4801,0,0",
        "--txt-record=lab._lap._udp.corp.test",
        "--txt-record=annex._lap._udp.corp.test",
        "--host-record=lapsd.corp.test,127.0.0.5",
        "--host-record=annex.corp.test,127.0.0.6",
    ]
}

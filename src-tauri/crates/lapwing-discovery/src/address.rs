//! `HOST:PORT` as people write it: the manual override, the machine policy and the manifest's
//! `address`. The CLI and the tray validate input with [`parse_host_port`] before storing it,
//! so a mistake is reported where it was made, not at the next activation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::{AddressProblem, DiscoveryError};

/// The host part: an address literal, used as is, or a name that is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    /// An ASCII host name as written (case and a trailing dot kept, for display).
    Name(String),
}

/// A validated `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: Host,
    pub port: u16,
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Self::Ip(IpAddr::V4(v4)) => write!(f, "{v4}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for HostPort {
    type Err = DiscoveryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_host_port(s)
    }
}

/// Parses `HOST:PORT`, `IPV4:PORT` or `[IPV6]:PORT`. Surrounding white space is ignored (a
/// pasted line often ends in a newline); anything else unusual is an error that says what to
/// change. Host names are checked against the DNS rules for host names (RFC 1123 labels, plus
/// `_`, which some internal zones use); internationalised names must be given in `xn--` form.
pub fn parse_host_port(text: &str) -> Result<HostPort, DiscoveryError> {
    parse(text.trim()).map_err(|problem| DiscoveryError::Address {
        input: text.to_owned(),
        problem,
    })
}

fn parse(text: &str) -> Result<HostPort, AddressProblem> {
    if text.is_empty() {
        return Err(AddressProblem::Empty);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(AddressProblem::BadIpv6)?;
        if inside.contains('%') {
            return Err(AddressProblem::Ipv6Zone);
        }
        let ip = Ipv6Addr::from_str(inside).map_err(|_| AddressProblem::BadIpv6)?;
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port)?,
            None if after.is_empty() => return Err(AddressProblem::MissingPort),
            None => return Err(AddressProblem::JunkAfterBracket),
        };
        return Ok(HostPort {
            host: Host::Ip(IpAddr::V6(ip)),
            port,
        });
    }
    // Two or more colons outside brackets can only be a bare IPv6 address (with or without a
    // port glued on); say so rather than "bad character ':'".
    if text.matches(':').count() > 1 {
        return Err(AddressProblem::Ipv6WithoutBrackets);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(AddressProblem::MissingPort);
    };
    if host.is_empty() {
        return Err(AddressProblem::MissingHost);
    }
    let port = parse_port(port)?;
    let host = parse_host(host)?;
    Ok(HostPort { host, port })
}

fn parse_port(text: &str) -> Result<u16, AddressProblem> {
    if text.is_empty() {
        return Err(AddressProblem::MissingPort);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressProblem::PortNotANumber);
    }
    let digits = text.trim_start_matches('0');
    if digits.is_empty() {
        return Err(AddressProblem::PortZero);
    }
    // Six digits or more are too large whatever they are; five fit a u32.
    if digits.len() > 5 {
        return Err(AddressProblem::PortTooLarge);
    }
    let value: u32 = digits.parse().map_err(|_| AddressProblem::PortNotANumber)?;
    u16::try_from(value).map_err(|_| AddressProblem::PortTooLarge)
}

fn parse_host(text: &str) -> Result<Host, AddressProblem> {
    if let Ok(v4) = Ipv4Addr::from_str(text) {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    validate_name(text)?;
    Ok(Host::Name(text.to_owned()))
}

/// Checks a DNS host name. Also used for the manifest's `srv_domain`.
pub(crate) fn validate_name(text: &str) -> Result<(), AddressProblem> {
    if !text.is_ascii() {
        return Err(AddressProblem::NonAscii);
    }
    let bare = text.strip_suffix('.').unwrap_or(text);
    if bare.is_empty() {
        return Err(AddressProblem::EmptyLabel);
    }
    if bare.len() > 253 {
        return Err(AddressProblem::NameTooLong);
    }
    let labels: Vec<&str> = bare.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(AddressProblem::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(AddressProblem::LabelTooLong);
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(AddressProblem::BadCharacter(c));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(AddressProblem::LabelHyphen);
        }
    }
    // RFC 1123 §2.1: a top-level label is never all digits, so `10.0.0.256` or `1.2.3` are
    // broken IPv4 addresses, not names; resolving them would give a confusing "not found".
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(AddressProblem::BadIpv4);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> AddressProblem {
        match parse_host_port(text) {
            Err(DiscoveryError::Address { input, problem }) => {
                assert_eq!(input, text, "the error keeps the input as written");
                problem
            }
            other => panic!("{text:?} should be refused, got {other:?}"),
        }
    }

    fn ok(text: &str) -> HostPort {
        parse_host_port(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    #[test]
    fn accepts_names_ipv4_and_bracketed_ipv6() {
        assert_eq!(
            ok("lap.acme.example:4711"),
            HostPort {
                host: Host::Name("lap.acme.example".into()),
                port: 4711
            }
        );
        assert_eq!(
            ok("LAP.Acme.Example.:1"),
            HostPort {
                host: Host::Name("LAP.Acme.Example.".into()),
                port: 1
            }
        );
        assert_eq!(ok("licserver:65535").port, 65535);
        assert_eq!(
            ok("_lab-1.internal:4711").host,
            Host::Name("_lab-1.internal".into())
        );
        assert_eq!(
            ok("192.0.2.7:4711").host,
            Host::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
        assert_eq!(
            ok("[2001:db8::1]:4711").host,
            Host::Ip("2001:db8::1".parse().expect("valid literal"))
        );
        assert_eq!(ok("[::ffff:192.0.2.1]:9").port, 9);
        assert_eq!(
            ok("  lap.example:4711\n").port,
            4711,
            "surrounding space ignored"
        );
        assert_eq!(
            ok("h:04711").port,
            4711,
            "leading zeros are still the same number"
        );
        assert_eq!(
            ok("xn--bcher-kva.example:4711").host,
            Host::Name("xn--bcher-kva.example".into())
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "lap.acme.example:4711",
            "192.0.2.7:4711",
            "[2001:db8::1]:4711",
        ] {
            assert_eq!(ok(text).to_string(), text);
            assert_eq!(ok(&ok(text).to_string()), ok(text));
        }
    }

    #[test]
    fn refuses_with_the_reason() {
        use AddressProblem as P;
        let cases: &[(&str, AddressProblem)] = &[
            ("", P::Empty),
            ("   ", P::Empty),
            ("lap.example", P::MissingPort),
            ("lap.example:", P::MissingPort),
            (":4711", P::MissingHost),
            ("lap.example:0", P::PortZero),
            ("lap.example:0000", P::PortZero),
            ("lap.example:65536", P::PortTooLarge),
            ("lap.example:99999999999999999999", P::PortTooLarge),
            ("lap.example:47a1", P::PortNotANumber),
            ("lap.example:-1", P::PortNotANumber),
            ("lap.example:+80", P::PortNotANumber),
            ("lap.example: 80", P::PortNotANumber),
            ("2001:db8::1:4711", P::Ipv6WithoutBrackets),
            ("::1", P::Ipv6WithoutBrackets),
            ("[2001:db8::1]", P::MissingPort),
            ("[2001:db8::1]:", P::MissingPort),
            ("[2001:db8::1]4711", P::JunkAfterBracket),
            ("[192.0.2.1]:4711", P::BadIpv6),
            ("[2001:db8::1:4711", P::BadIpv6),
            ("[fe80::1%eth0]:4711", P::Ipv6Zone),
            ("10.0.0.256:4711", P::BadIpv4),
            ("1.2.3:4711", P::BadIpv4),
            ("lap example:4711", P::BadCharacter(' ')),
            ("lap/example:4711", P::BadCharacter('/')),
            ("bücher.example:4711", P::NonAscii),
            ("a..b:4711", P::EmptyLabel),
            (".a:4711", P::EmptyLabel),
            (".:4711", P::EmptyLabel),
            ("-a.example:4711", P::LabelHyphen),
            ("a-.example:4711", P::LabelHyphen),
        ];
        for (text, expected) in cases {
            assert_eq!(&problem(text), expected, "input {text:?}");
        }
        let long_label = format!("{}.example:4711", "a".repeat(64));
        assert_eq!(problem(&long_label), P::LabelTooLong);
        let ok_label = format!("{}.example:4711", "a".repeat(63));
        ok(&ok_label);
        let long_name = format!("{}:4711", vec!["a".repeat(63); 4].join("."));
        assert_eq!(problem(&long_name), P::NameTooLong);
    }

    #[test]
    fn messages_name_the_fix() {
        let msg = parse_host_port("lap.example")
            .expect_err("must be refused")
            .to_string();
        assert!(msg.contains("missing port"), "{msg}");
        assert!(msg.contains("\"lap.example\""), "{msg}");
        let msg = parse_host_port("h:0")
            .expect_err("must be refused")
            .to_string();
        assert!(msg.contains("port 0"), "{msg}");
        let msg = parse_host_port("::1:4711")
            .expect_err("must be refused")
            .to_string();
        assert!(msg.contains("[2001:db8::1]:4711"), "{msg}");
    }
}

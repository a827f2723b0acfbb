//! Host grants (`http_hosts` entries) and the addresses no name grant
//! reaches.
//!
//! An entry is one of:
//!
//! - a name, `api.example.com`, or all its subdomains, `*.example.com`:
//!   ports 80 and 443 only, unless a port is given (`api.example.com:8443`,
//!   or `api.example.com:*` for any);
//! - an address, `10.0.0.5` or `::1`, or a range, `10.0.0.0/8` or
//!   `fd00::/8`: every port, unless a port is given (`10.0.0.5:8080`,
//!   `[::1]:8080`, `[fd00::/8]:443`).
//!
//! Whatever a name resolves to, a loopback, private, link-local, CGNAT,
//! unique-local, metadata, multicast or unspecified address is reached only
//! through an address or range grant that contains it: granting a name
//! never grants the machine's own services or the cloud metadata endpoint.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnet::IpNet;

/// What part of the host an entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// One name, lower-case.
    Name(String),
    /// Every subdomain of this domain (lower-case, without `*.`).
    Subdomains(String),
    /// An address or range.
    Net(IpNet),
}

/// Which ports an entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    /// None given: 80 and 443 for names, every port for addresses.
    Unset,
    /// `:*`.
    Any,
    /// `:N`.
    One(u16),
}

/// One parsed `http_hosts` entry (not `*`, which only manifests use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    host: HostPattern,
    ports: Ports,
}

/// Ports a name grant without a port allows.
const WEB_PORTS: [u16; 2] = [80, 443];

impl HostGrant {
    /// Parses an entry; `Err` says what is wrong with it.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let bad = |why: &str| format!("invalid host grant {entry:?}: {why}");
        let (host, ports) = if let Some(rest) = entry.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing `]` after an IPv6 address"))?;
            let ports = match after {
                "" => Ports::Unset,
                _ => parse_port(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("expected `:port` after `]`"))?,
                )
                .ok_or_else(|| bad("the port must be 1-65535 or `*`"))?,
            };
            (inside, ports)
        } else if entry.parse::<IpAddr>().is_ok()
            || entry.parse::<IpNet>().is_ok()
            || !entry.contains(':')
        {
            (entry, Ports::Unset)
        } else {
            let (host, port) = entry.rsplit_once(':').expect("contains ':'");
            if host.contains(':') {
                return Err(bad("write IPv6 addresses with a port as `[addr]:port`"));
            }
            let ports = parse_port(port).ok_or_else(|| bad("the port must be 1-65535 or `*`"))?;
            (host, ports)
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let host = if let Ok(ip) = host.parse::<IpAddr>() {
            HostPattern::Net(IpNet::from(canonical(ip)))
        } else if let Ok(net) = host.parse::<IpNet>() {
            HostPattern::Net(net.trunc())
        } else {
            let lower = host.to_ascii_lowercase();
            let (name, wildcard) = match lower.strip_prefix("*.") {
                Some(domain) => (domain.to_owned(), true),
                None => (lower, false),
            };
            let valid = !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if !valid {
                return Err(bad(
                    "expected a host name, `*.domain`, an IP address or a CIDR range",
                ));
            }
            if wildcard {
                HostPattern::Subdomains(name)
            } else {
                HostPattern::Name(name)
            }
        };
        Ok(Self { host, ports })
    }

    /// Whether a URL naming `host` (lower-case name, or an address) on
    /// `port` is granted by this entry (before any address is resolved).
    pub fn allows_url(&self, host: &UrlHost<'_>, port: u16) -> bool {
        let host_ok = match (&self.host, host) {
            (HostPattern::Name(n), UrlHost::Name(h)) => n == h,
            (HostPattern::Subdomains(d), UrlHost::Name(h)) => {
                h.strip_suffix(d.as_str()).is_some_and(|p| p.ends_with('.'))
            }
            (HostPattern::Net(net), UrlHost::Ip(ip)) => net.contains(ip),
            _ => false,
        };
        host_ok && self.allows_port(port)
    }

    /// Whether this entry grants address `ip` on `port` explicitly (an
    /// address or range grant): what an internal address needs.
    pub fn allows_addr(&self, ip: IpAddr, port: u16) -> bool {
        matches!(&self.host, HostPattern::Net(net) if net.contains(&ip)) && self.allows_port(port)
    }

    fn allows_port(&self, port: u16) -> bool {
        match (self.ports, &self.host) {
            (Ports::Any, _) | (Ports::Unset, HostPattern::Net(_)) => true,
            (Ports::Unset, _) => WEB_PORTS.contains(&port),
            (Ports::One(p), _) => p == port,
        }
    }

    /// What a plugin gets when it requests `self` and the operator grants
    /// `grant`: `self`'s host, if `grant` covers it, with the narrower ports.
    fn within(&self, grant: &HostGrant) -> Option<HostGrant> {
        let covered = match (&self.host, &grant.host) {
            (HostPattern::Name(a), HostPattern::Name(b)) => a == b,
            (HostPattern::Name(a), HostPattern::Subdomains(d))
            | (HostPattern::Subdomains(a), HostPattern::Subdomains(d)) => {
                a.strip_suffix(d.as_str()).is_some_and(|p| p.ends_with('.'))
                    || (a == d && matches!(self.host, HostPattern::Subdomains(_)))
            }
            (HostPattern::Net(a), HostPattern::Net(b)) => b.contains(a),
            _ => false,
        };
        if !covered {
            return None;
        }
        let name = !matches!(self.host, HostPattern::Net(_));
        let ports = match (self.ports, grant.ports) {
            (Ports::One(a), Ports::One(b)) if a != b => return None,
            (Ports::One(p), Ports::Unset) if name && !WEB_PORTS.contains(&p) => return None,
            (Ports::One(p), _) | (_, Ports::One(p)) => Ports::One(p),
            (Ports::Unset, _) | (_, Ports::Unset) => Ports::Unset,
            (Ports::Any, Ports::Any) => Ports::Any,
        };
        Some(HostGrant {
            host: self.host.clone(),
            ports,
        })
    }
}

impl fmt::Display for HostGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Name(n) => n.clone(),
            HostPattern::Subdomains(d) => format!("*.{d}"),
            HostPattern::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                net.addr().to_string()
            }
            HostPattern::Net(net) => net.to_string(),
        };
        let v6 = matches!(&self.host, HostPattern::Net(IpNet::V6(_)));
        match self.ports {
            Ports::Unset => f.write_str(&host),
            _ if v6 => write!(f, "[{host}]:{}", port_text(self.ports)),
            _ => write!(f, "{host}:{}", port_text(self.ports)),
        }
    }
}

fn port_text(ports: Ports) -> String {
    match ports {
        Ports::One(p) => p.to_string(),
        _ => "*".into(),
    }
}

fn parse_port(text: &str) -> Option<Ports> {
    match text {
        "*" => Some(Ports::Any),
        _ => text.parse::<u16>().ok().filter(|p| *p != 0).map(Ports::One),
    }
}

/// A URL's host: a lower-case name or an address.
#[derive(Debug, Clone, Copy)]
pub enum UrlHost<'a> {
    /// A DNS name.
    Name(&'a str),
    /// An address literal.
    Ip(IpAddr),
}

/// What a plugin gets of `requested` given `granted` (the manifest's and
/// the operator's `http_hosts`). A request of `*` takes every grant; invalid
/// entries are dropped (the config loader reports the operator's).
pub fn intersect(requested: &[String], granted: &[String]) -> Vec<String> {
    let grants: Vec<HostGrant> = granted
        .iter()
        .filter(|g| *g != "*")
        .filter_map(|g| HostGrant::parse(g).ok())
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut push = |entry: String| {
        if !out.contains(&entry) {
            out.push(entry);
        }
    };
    if requested.iter().any(|r| r == "*") {
        grants.iter().for_each(|g| push(g.to_string()));
        return out;
    }
    for asked in requested.iter().filter_map(|r| HostGrant::parse(r).ok()) {
        for grant in &grants {
            if let Some(effective) = asked.within(grant) {
                push(effective.to_string());
            }
        }
    }
    out
}

/// The kind of address only an explicit address grant reaches, if `ip` is one.
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "cloud metadata",
        (0, ..) => "unspecified",
        (127, ..) => "loopback",
        (10, ..) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "IETF protocol",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s {
        _ if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "cloud metadata",
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        // 6to4 carries an IPv4 address: judge that one.
        [0x2002, hi, lo, ..] => {
            let v4 = Ipv4Addr::from(((u32::from(hi)) << 16) | u32::from(lo));
            return v4_kind(v4);
        }
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => "NAT64",
        [0, 0, 0, 0, 0, 0, ..] => "IPv4-compatible",
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique-local",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`) as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> HostGrant {
        HostGrant::parse(s).unwrap()
    }

    #[test]
    fn entries_parse_and_print_back() {
        for entry in [
            "api.example.com",
            "*.example.com",
            "api.example.com:8443",
            "api.example.com:*",
            "127.0.0.1",
            "127.0.0.1:8080",
            "10.0.0.0/8",
            "10.0.0.0/8:443",
            "::1",
            "[::1]:8080",
            "fd00::/8",
            "[fd00::/8]:443",
        ] {
            assert_eq!(g(entry).to_string(), entry);
        }
        for bad in [
            "", "a b", "host:0", "host:x", "::1:80x", "[::1", "*", "*.", "a..b",
        ] {
            assert!(HostGrant::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_get_web_ports_and_addresses_every_port() {
        let name = UrlHost::Name("api.example.com");
        assert!(g("api.example.com").allows_url(&name, 443));
        assert!(g("api.example.com").allows_url(&name, 80));
        assert!(!g("api.example.com").allows_url(&name, 6379));
        assert!(g("api.example.com:6379").allows_url(&name, 6379));
        assert!(g("*.example.com").allows_url(&name, 443));
        assert!(!g("*.example.com").allows_url(&UrlHost::Name("example.com"), 443));
        assert!(!g("*.example.com").allows_url(&UrlHost::Name("evilexample.com"), 443));
        let lo = UrlHost::Ip("127.0.0.1".parse().unwrap());
        assert!(g("127.0.0.1").allows_url(&lo, 7008));
        assert!(!g("127.0.0.1:80").allows_url(&lo, 7008));
        assert!(!g("localhost").allows_url(&lo, 80));
        assert!(!g("api.example.com").allows_addr("127.0.0.1".parse().unwrap(), 443));
        assert!(g("127.0.0.0/8").allows_addr("127.0.0.2".parse().unwrap(), 1));
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "2002:7f00:1::",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(internal_kind(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1", "172.32.0.1"] {
            assert!(internal_kind(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }

    #[test]
    fn requests_meet_grants() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(intersect(&s(&["*"]), &s(&["a.com", "*"])), s(&["a.com"]));
        assert_eq!(
            intersect(&s(&["a.com"]), &s(&["a.com:8443"])),
            s(&["a.com:8443"])
        );
        assert_eq!(
            intersect(&s(&["a.com:8443"]), &s(&["a.com"])),
            s(&[] as &[&str])
        );
        assert_eq!(
            intersect(&s(&["x.a.com"]), &s(&["*.a.com"])),
            s(&["x.a.com"])
        );
        assert_eq!(
            intersect(&s(&["*.a.com"]), &s(&["x.a.com"])),
            s(&[] as &[&str])
        );
        assert_eq!(
            intersect(&s(&["10.0.0.5"]), &s(&["10.0.0.0/8"])),
            s(&["10.0.0.5"])
        );
        assert_eq!(
            intersect(&s(&["127.0.0.1"]), &s(&["127.0.0.1"])),
            s(&["127.0.0.1"])
        );
    }
}

//! Reading `url` targets without reaching what the catalog should not: an
//! allow-list of hosts, addresses checked by the resolver the connection
//! uses (so the check and the connection see the same address), IP literals
//! checked before connecting, every redirect hop checked again, and bodies
//! streamed under a running size cap.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// Why a URL is not read. Shown to callers: says what to configure, never
/// an address or an OS error.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Refused {
    #[error("host {0} is not allowed (catalog.url_allowed_hosts)")]
    Host(String),
    #[error("host {0} resolves to an address that is not allowed (catalog.url_allowed_ips)")]
    Address(String),
    #[error("only http and https are supported")]
    Scheme,
}

/// The hosts and addresses `url` targets may reach.
#[derive(Debug, Default)]
pub(crate) struct UrlPolicy {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl UrlPolicy {
    pub(crate) fn new(hosts: &[String], ips: &[String]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for ip in ips {
            let net = ip
                .parse::<IpNet>()
                .or_else(|_| ip.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("catalog.url_allowed_ips: \"{ip}\" is not an address or CIDR block")
                })?;
            nets.push(net);
        }
        Ok(Self {
            hosts: hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            nets,
        })
    }

    /// `port` lets `host:port` entries match (Backstage's `reading.allow`).
    fn host_allowed(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.to_ascii_lowercase();
        let with_port = port.map(|p| format!("{host}:{p}"));
        self.hosts.iter().any(|pattern| {
            pattern == "*"
                || *pattern == host
                || with_port.as_deref() == Some(pattern.as_str())
                || pattern
                    .strip_prefix("*.")
                    .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")))
        })
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        is_public(ip) || self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Checks a URL before it is requested (the first one and each redirect).
    pub(crate) fn check(&self, url: &url::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Scheme);
        }
        let host = url.host_str().unwrap_or_default();
        if !self.host_allowed(host, url.port_or_known_default()) {
            return Err(Refused::Host(host.to_owned()));
        }
        // An address in the URL skips the resolver: check it here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !self.ip_allowed(ip)
        {
            return Err(Refused::Address(host.to_owned()));
        }
        Ok(())
    }
}

/// Globally routable unicast addresses only: no loopback, private, CGNAT,
/// link-local (cloud metadata), unique-local, multicast, documentation or
/// reserved ranges.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Global unicast is 2000::/3; within it, documentation, 6to4 and Teredo
    // can carry or stand for other addresses.
    (s[0] & 0xe000) == 0x2000
        && !(s[0] == 0x2001 && s[1] == 0x0db8)
        && s[0] != 0x2002
        && !(s[0] == 0x2001 && s[1] == 0)
}

/// Resolves names for the HTTP client, keeping only allowed addresses: the
/// connection can only go where the check said yes.
struct Resolver(Arc<UrlPolicy>);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| policy.ip_allowed(a.ip())).collect();
            if allowed.is_empty() {
                return Err(
                    Box::new(Refused::Address(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Most redirects followed for one target.
const MAX_REDIRECTS: usize = 5;

/// The HTTP client for `url` targets.
pub(crate) fn client(policy: Arc<UrlPolicy>, timeout: Duration) -> Result<reqwest::Client, String> {
    let redirects = policy.clone();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("callboard-catalog/", env!("CARGO_PKG_VERSION")))
        // A proxy would resolve names itself, out of the resolver's reach.
        .no_proxy()
        .dns_resolver(Arc::new(Resolver(policy)))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(RedirectError::TooMany);
            }
            match redirects.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(RedirectError::Refused(e)),
            }
        }))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

#[derive(Debug, thiserror::Error)]
enum RedirectError {
    #[error("too many redirects")]
    TooMany,
    #[error("redirect refused: {0}")]
    Refused(Refused),
}

/// A message for callers about a failed request; the details go to the log.
fn describe(url: &url::Url, e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return r.to_string();
        }
        if let Some(r) = s.downcast_ref::<RedirectError>() {
            return r.to_string();
        }
        source = s.source();
    }
    tracing::warn!(%url, "catalog: reading a url target failed: {e:#}");
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}

/// Reads a URL: `Ok(None)` for 404, an error message for callers otherwise.
/// At most `max + 1` bytes of the body are read.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    policy: &UrlPolicy,
    url: &url::Url,
    max: u64,
) -> Result<Option<String>, String> {
    policy.check(url).map_err(|e| e.to_string())?;
    let mut response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| describe(url, &e))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    let too_large = || format!("larger than {max} bytes");
    if response.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(url, &e))? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body)
        .map(Some)
        .map_err(|_| "not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!UrlPolicy::default().ip_allowed(ip), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(UrlPolicy::default().ip_allowed(ip), "{ip}");
        }
        let p = UrlPolicy::new(&[], &["127.0.0.0/8".into()]).unwrap();
        assert!(p.ip_allowed("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn host_patterns() {
        let p = UrlPolicy::new(&["*.example.com".into(), "git.internal".into()], &[]).unwrap();
        assert!(p.host_allowed("a.example.com", None));
        assert!(!p.host_allowed("example.com", None));
        assert!(!p.host_allowed("evilexample.com", None));
        assert!(p.host_allowed("GIT.internal", Some(443)));
        assert!(!p.host_allowed("other", None));
        let p = UrlPolicy::new(&["git.internal:8443".into()], &[]).unwrap();
        assert!(p.host_allowed("git.internal", Some(8443)));
        assert!(!p.host_allowed("git.internal", Some(443)));
    }
}

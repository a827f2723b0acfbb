//! Credentials the operator binds to a plugin's granted hosts
//! (`[plugins.credentials.<id>."<host>[:<port>]"]`): headers (`Authorization:
//! Bearer ...`), a client certificate, a CA bundle, or `skip_tls_verify`.
//! They are added by the host at the hop that goes to that host, replace a
//! header of the same name the plugin set, and never reach the plugin or
//! another host.

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

/// Most bytes of a client certificate or CA bundle file.
const MAX_PEM: u64 = 1 << 20;

/// One binding, as `callboard.toml` writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialConfig {
    /// Headers added to every request to the host, e.g.
    /// `authorization = "Bearer ..."`.
    pub headers: BTreeMap<String, String>,
    /// A PEM file with the client certificate (chain) and its private key.
    pub client_cert: Option<PathBuf>,
    /// A PEM file of CA certificates trusted for the host (besides the
    /// usual roots).
    pub ca_bundle: Option<PathBuf>,
    /// Accept any certificate from this host (a cluster with a self-signed
    /// certificate and no CA bundle at hand). Never set it for a host
    /// reached over a network you do not control.
    pub skip_tls_verify: bool,
}

/// A binding resolved at install: what the host adds for one host.
#[derive(Clone)]
pub struct Bound {
    /// Distinguishes clients built with this binding's TLS settings.
    pub(super) id: usize,
    /// Lower-case host name or address, without brackets.
    host: String,
    /// The port, when the binding names one.
    port: Option<u16>,
    /// Validated headers, names lower-case.
    headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    identity: Option<reqwest::Identity>,
    roots: Vec<reqwest::Certificate>,
    skip_verify: bool,
    /// Why the binding cannot be used (a file missing, a header invalid):
    /// requests to the host then fail instead of going out without it.
    broken: Option<String>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the header values or keys.
        f.debug_struct("Bound")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("client_cert", &self.identity.is_some())
            .field("skip_verify", &self.skip_verify)
            .finish_non_exhaustive()
    }
}

impl Bound {
    /// Resolves plugin `plugin`'s bindings. A binding that cannot be used
    /// is kept as broken (logged, naming plugin and host), so requests to
    /// its host fail rather than leave without the credential.
    pub fn resolve(plugin: &str, config: &BTreeMap<String, CredentialConfig>) -> Vec<Bound> {
        config
            .iter()
            .enumerate()
            .map(|(i, (key, c))| {
                let (host, port) = split_host(key);
                let mut bound = Bound {
                    id: i,
                    host,
                    port,
                    headers: Vec::new(),
                    identity: None,
                    roots: Vec::new(),
                    skip_verify: c.skip_tls_verify,
                    broken: None,
                };
                if let Err(why) = bound.load(c) {
                    tracing::error!(plugin, host = %key, "credentials cannot be used: {why}; requests to this host will fail");
                    bound.broken = Some(format!(
                        "the operator's credentials for {key} cannot be used; see the host log"
                    ));
                }
                bound
            })
            .collect()
    }

    fn load(&mut self, c: &CredentialConfig) -> Result<(), String> {
        for (name, value) in &c.headers {
            let name =
                reqwest::header::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                    .map_err(|_| format!("header name {name:?} is not valid"))?;
            let mut value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("header {name}'s value is not valid"))?;
            value.set_sensitive(true);
            self.headers.push((name, value));
        }
        if let Some(path) = &c.client_cert {
            let pem = read_pem(path)?;
            self.identity = Some(
                reqwest::Identity::from_pem(&pem)
                    .map_err(|e| format!("client_cert {}: {e}", path.display()))?,
            );
        }
        if let Some(path) = &c.ca_bundle {
            let pem = read_pem(path)?;
            self.roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("ca_bundle {}: {e}", path.display()))?;
            if self.roots.is_empty() {
                return Err(format!("ca_bundle {} holds no certificate", path.display()));
            }
        }
        Ok(())
    }

    /// The binding, unless it is broken.
    pub(super) fn usable(&self) -> Result<&Bound, String> {
        match &self.broken {
            Some(why) => Err(why.clone()),
            None => Ok(self),
        }
    }

    /// Whether this binding changes how TLS connects.
    pub(super) fn has_tls(&self) -> bool {
        self.identity.is_some() || !self.roots.is_empty() || self.skip_verify
    }

    /// Whether the binding sets header `lower` (the plugin's is dropped).
    pub(super) fn sets_header(&self, lower: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.as_str() == lower)
    }

    pub(super) fn add_headers(
        &self,
        mut builder: reqwest::RequestBuilder,
    ) -> reqwest::RequestBuilder {
        for (name, value) in &self.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        builder
    }

    pub(super) fn apply(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if let Some(identity) = &self.identity {
            builder = builder.identity(identity.clone());
        }
        for root in &self.roots {
            builder = builder.add_root_certificate(root.clone());
        }
        if self.skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        builder
    }
}

/// The binding for `url`'s host and port: one naming the port wins over
/// one naming only the host.
pub(super) fn find<'a>(bindings: &'a [Bound], url: &reqwest::Url) -> Option<&'a Bound> {
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = url.port_or_known_default();
    bindings
        .iter()
        .filter(|b| b.host == host && (b.port.is_none() || b.port == port))
        .max_by_key(|b| b.port.is_some())
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
fn split_host(key: &str) -> (String, Option<u16>) {
    let key = key.trim().to_ascii_lowercase();
    if let Some(rest) = key.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        return (
            host.to_owned(),
            after.strip_prefix(':').and_then(|p| p.parse().ok()),
        );
    }
    match key.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host.to_owned(), Some(port)),
            Err(_) => (key.clone(), None),
        },
        _ => (key.clone(), None),
    }
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut pem = Vec::new();
    file.take(MAX_PEM + 1)
        .read_to_end(&mut pem)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if pem.len() as u64 > MAX_PEM {
        return Err(format!("{}: over {MAX_PEM} bytes", path.display()));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(keys: &[&str]) -> Vec<Bound> {
        let config = keys
            .iter()
            .map(|k| {
                let mut c = CredentialConfig::default();
                c.headers
                    .insert("Authorization".into(), format!("Bearer {k}"));
                ((*k).to_owned(), c)
            })
            .collect();
        Bound::resolve("k8s", &config)
    }

    #[test]
    fn a_binding_applies_to_its_host_only() {
        let b = bound(&["cluster.example", "cluster.example:6443", "[::1]:8443"]);
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert_eq!(
            find(&b, &url("https://cluster.example:6443/api"))
                .unwrap()
                .port,
            Some(6443)
        );
        assert_eq!(
            find(&b, &url("https://cluster.example/api")).unwrap().port,
            None
        );
        assert_eq!(
            find(&b, &url("https://CLUSTER.example/")).unwrap().host,
            "cluster.example"
        );
        assert!(find(&b, &url("https://cluster.example.evil/")).is_none());
        assert!(find(&b, &url("https://evil.example/?cluster.example")).is_none());
        assert_eq!(find(&b, &url("https://[::1]:8443/")).unwrap().host, "::1");
        assert!(find(&b, &url("https://[::1]:9443/")).is_none());
    }

    #[test]
    fn a_broken_binding_fails_closed_and_debug_hides_values() {
        let mut c = CredentialConfig::default();
        c.headers
            .insert("authorization".into(), "Bearer s3cret".into());
        c.client_cert = Some("/nonexistent/cert.pem".into());
        let b = Bound::resolve("k8s", &BTreeMap::from([("h.example".to_owned(), c)]));
        assert!(b[0].usable().unwrap_err().contains("h.example"));
        assert!(!format!("{:?}", b[0]).contains("s3cret"));
        let bad = CredentialConfig {
            headers: BTreeMap::from([("authorization".to_owned(), "Bearer \n x".to_owned())]),
            ..CredentialConfig::default()
        };
        let b = Bound::resolve("k8s", &BTreeMap::from([("h.example".to_owned(), bad)]));
        assert!(b[0].usable().is_err());
    }
}

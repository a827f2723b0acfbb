//! Guards every API area shares: the permission checks of catalog routes
//! (the caller's identity against the access policy), the refusal to delete
//! a configured location, and the `Host` check against DNS rebinding.
//!
//! The guards run as route layers, before any handler or extractor, so a
//! caller who may not call a route never gets its request body read.

use std::{collections::HashSet, net::SocketAddr, sync::Arc};

use axum::{
    extract::{Path, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use callboard_catalog::{Catalog, LocationKind};

use callboard_catalog::Predicate;

use super::error::ApiError;
use crate::{
    auth::Tokens,
    identity::{
        Identity,
        access::{Access, Scope},
        config::Anonymous,
    },
    permissions::{CATALOG_ENTITY_READ, Decision},
    server::config::ServerConfig,
};

/// Who may use the catalog API: the access decisions, and (for a catalog
/// router served on its own, without [`crate::identity::resolve`] in front)
/// the tokens to resolve identities with.
#[derive(Clone)]
pub struct CatalogAccess {
    access: Arc<Access>,
    standalone: Option<Arc<Tokens>>,
}

impl CatalogAccess {
    /// Decisions of `access`, for requests [`crate::identity::resolve`]
    /// already identified.
    pub fn new(access: Arc<Access>) -> Self {
        Self {
            access,
            standalone: None,
        }
    }

    /// A catalog router on its own (tests, benchmarks): `admin_token` is the
    /// super-administrator, anonymous callers read what the default policy
    /// lets everyone read.
    pub fn admin_only(admin_token: &str) -> Self {
        let tokens = Tokens::load(admin_token, &ServerConfig::default())
            .expect("no API tokens to load in the default config");
        Self {
            access: Arc::new(Access::fixed(
                crate::permissions::Policy::default_policy(&[]),
                Anonymous::Read,
            )),
            standalone: Some(Arc::new(tokens)),
        }
    }

    /// The decisions.
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }
}

/// The request's identity ([`Identity::anonymous`] if none was resolved).
pub fn identity_of(request: &Request) -> Identity {
    request
        .extensions()
        .get::<Identity>()
        .cloned()
        .unwrap_or_else(Identity::anonymous)
}

/// Layer of a standalone catalog router: resolves the admin token (only).
pub async fn standalone_identity(
    State(access): State<CatalogAccess>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(tokens) = &access.standalone
        && request.extensions().get::<Identity>().is_none()
    {
        let identity = match crate::auth::bearer(request.headers()) {
            Some(offered) if tokens.is_admin(offered) => Identity::admin(),
            Some(_) => {
                return ApiError::unauthenticated("the bearer token is not valid").into_response();
            }
            None => Identity::anonymous(),
        };
        request.extensions_mut().insert(identity);
    }
    next.run(request).await
}

/// The refusal for a caller the policy does not allow: 401 when they named
/// nobody (sign in, or send a token), 403 otherwise.
pub fn refuse(identity: &Identity, permission: &str) -> ApiError {
    if identity.is_anonymous() {
        ApiError::unauthenticated(format!(
            "{permission} needs a signed-in user or `Authorization: Bearer <token>` (an API \
             token, or the admin token in <data_dir>/admin-token)"
        ))
    } else {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "NotAllowedError",
            format!("{} is not allowed {permission}", identity.name()),
        )
    }
}

/// Route layer for a permission: the request goes on only if the policy
/// allows it (or, for a resource permission, allows it on some entities:
/// the handler then checks the entity), before any body is read.
pub async fn require(
    State((access, permission)): State<(CatalogAccess, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let identity = identity_of(&request);
    let allowed = match access.access.decide(&identity, permission) {
        Decision::Allow | Decision::Conditional(_) => true,
        Decision::Deny => false,
    };
    if !allowed {
        return refuse(&identity, permission).into_response();
    }
    tracing::debug!(who = %identity.name(), permission, method = %request.method(), path = %request.uri().path(), "catalog API: authorized");
    next.run(request).await
}

/// Which entities a catalog read reaches, for the handlers.
#[derive(Debug, Clone)]
pub struct ReadScope(pub Scope);

impl ReadScope {
    /// `predicate` narrowed to what the caller may read (a predicate that
    /// matches nothing when they may read nothing).
    pub fn apply(&self, predicate: Option<Predicate>) -> Option<Predicate> {
        self.0
            .narrow(predicate)
            .unwrap_or(Some(Predicate::Any(Vec::new())))
    }
}

/// Route layer on catalog reads: works out the caller's `catalog.entity.read`
/// scope; an anonymous caller who may read nothing gets 401.
pub async fn read_scope(
    State(access): State<CatalogAccess>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = identity_of(&request);
    let scope = access.access.scope(&identity, CATALOG_ENTITY_READ);
    if scope == Scope::Nothing && identity.is_anonymous() {
        return refuse(&identity, CATALOG_ENTITY_READ).into_response();
    }
    request.extensions_mut().insert(ReadScope(scope));
    next.run(request).await
}

/// Route layer on `DELETE /locations/{id}`: a location the configuration
/// declares stays (remove it from `catalog.locations` instead).
pub async fn keep_config_locations(
    State(catalog): State<Catalog>,
    Path(id): Path<String>,
    request: Request,
    next: Next,
) -> Response {
    if let Ok(Some(row)) = catalog.location(&id).await {
        let declared =
            catalog.config().locations.iter().any(|l| {
                l.kind.as_str() == row.kind && same_target(l.kind, &l.target, &row.target)
            });
        if declared {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "NotAllowedError",
                format!(
                    "location {} is declared in the server's configuration and cannot be deleted \
                     through the API",
                    row.id
                ),
            )
            .into_response();
        }
    }
    // Unknown ids and lookup failures are the handler's to report.
    next.run(request).await
}

/// Whether a configured target and a stored one name the same location.
/// File targets are stored absolute and lexically cleaned, URLs normalised.
fn same_target(kind: LocationKind, configured: &str, stored: &str) -> bool {
    match kind {
        LocationKind::File => {
            let path = std::path::Path::new(configured);
            let absolute = if path.is_absolute() {
                path.to_owned()
            } else {
                match std::env::current_dir() {
                    Ok(cwd) => cwd.join(path),
                    Err(_) => return configured == stored,
                }
            };
            clean(&absolute) == std::path::Path::new(stored)
        }
        LocationKind::Url => url::Url::parse(configured).is_ok_and(|u| u.as_str() == stored),
    }
}

/// `a/./b/../c` as `a/c`, without touching the file system.
fn clean(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The `Host` values the server answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    any: bool,
    /// Lower-case names (any port) and `name:port` pairs.
    names: Arc<HashSet<String>>,
}

impl AllowedHosts {
    /// Loopback names, the bind address, `public_url`'s host and
    /// `allowed_hosts`. A server bound to every interface with nothing
    /// configured answers to any name (and says so in the log).
    pub fn new(config: &ServerConfig, bind: SocketAddr) -> Self {
        let mut names: HashSet<String> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let ip = bind.ip();
        if !ip.is_unspecified() {
            names.insert(match ip {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            });
        }
        if let Some(host) = config
            .public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        {
            names.insert(host);
        }
        let mut any = false;
        for h in &config.allowed_hosts {
            let h = h.trim().to_ascii_lowercase();
            if h == "*" {
                any = true;
            } else if !h.is_empty() {
                names.insert(h);
            }
        }
        if ip.is_unspecified() && config.allowed_hosts.is_empty() && config.public_url.is_none() {
            tracing::warn!(
                "listening on every interface with neither server.allowed_hosts nor \
                 server.public_url set: any Host header is answered (set one to stop DNS rebinding)"
            );
            any = true;
        }
        Self {
            any,
            names: Arc::new(names),
        }
    }

    /// Whether a `Host` header value is one of ours.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        // `[v6]:port`, `name:port` or a bare name.
        let name = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => &host[..i],
            _ => host.as_str(),
        };
        self.names.contains(&host) || self.names.contains(name)
    }
}

/// Middleware on every route: a request whose `Host` is not ours gets 421,
/// so a page on another site that re-points its DNS name at 127.0.0.1
/// cannot talk to a loopback-bound server with the user's browser.
pub async fn check_host(
    State(allowed): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"))
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if let Some(host) = host
        && !allowed.allows(host)
    {
        tracing::info!(
            host,
            "refused a request for a host this server does not serve"
        );
        return (
            StatusCode::MISDIRECTED_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This server does not answer to that host name. An operator can allow it with \
             server.allowed_hosts in callboard.toml.\n",
        )
            .into_response();
    }
    next.run(request).await
}

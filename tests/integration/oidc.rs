//! A real OpenID Connect provider for the sign-in tests, and a browser-like
//! driver for the sign-in flow.
//!
//! [`Provider::start`] runs panva's `oidc-provider` (the certified Node.js
//! implementation, pinned in `tests/oidc/package.json`) through
//! `tests/oidc/provider.mjs` on 127.0.0.1, installing the npm package into
//! `~/.cache/callboard/npm-oidc` (or `$CALLBOARD_OIDC_NPM_CACHE`) the first
//! time. Node 20+ and npm are required: without them the test panics and says
//! which is missing, rather than passing without checking anything.
//!
//! The provider signs in the account named by the authorization request's
//! `login_hint` without any page to fill in; [`sign_in_flow`] adds it and
//! follows the redirects by hand, keeping cookies per origin like a browser.
//! For negative tests, [`Provider::mint_id_token`] issues ID tokens with any
//! claims and a chosen key, and [`Provider::tamper_next_id_token`] makes the
//! token endpoint's next answer carry such a token in place of the real one.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

/// How long the provider may take to print its issuer line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of the provider's stderr is kept for failure messages.
const STDERR_CAP: usize = 64 * 1024;
/// Redirects [`sign_in_flow`] follows before giving up.
const MAX_HOPS: usize = 20;

/// An account the provider can sign in; every field is put in the ID token
/// (scopes `email`, `profile`, `groups`).
#[derive(Debug, Clone)]
pub struct Account {
    /// The subject, `sub`.
    pub sub: String,
    /// `email`.
    pub email: String,
    /// `email_verified`.
    pub email_verified: bool,
    /// `name`.
    pub name: String,
    /// `groups`.
    pub groups: Vec<String>,
    /// `preferred_username`; also what [`sign_in_flow`]'s `login` names.
    pub preferred_username: String,
}

impl Account {
    /// `login`'s account: sub `<login>-sub`, email `<login>@example.com`
    /// (verified), name `login` capitalised, the given groups.
    pub fn new(login: &str, groups: &[&str]) -> Account {
        let mut name = login.to_owned();
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        Account {
            sub: format!("{login}-sub"),
            email: format!("{login}@example.com"),
            email_verified: true,
            name,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            preferred_username: login.to_owned(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "sub": self.sub,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "groups": self.groups,
            "preferred_username": self.preferred_username,
        })
    }
}

/// Which key signs a token from [`Provider::mint_id_token`] or
/// [`Provider::tamper_next_id_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKey {
    /// The provider's own key, the one its JWKS publishes: a valid signature.
    Provider,
    /// A key that is not in the JWKS but whose header carries the provider
    /// key's `kid`: only checking the signature catches it.
    Foreign,
    /// No signature at all: `alg: none`, empty signature part.
    Unsigned,
}

impl TokenKey {
    fn as_str(self) -> &'static str {
        match self {
            TokenKey::Provider => "provider",
            TokenKey::Foreign => "foreign",
            TokenKey::Unsigned => "none",
        }
    }
}

/// A running `oidc-provider` with one confidential client (PKCE S256 required,
/// `client_secret_basic` at the token endpoint) and its accounts. Dropping it
/// kills the process; its stdin is held open meanwhile, and the provider also
/// exits when that closes, so a crashed test leaves nothing behind.
pub struct Provider {
    /// `http://127.0.0.1:<port>`, the issuer; discovery is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl Provider {
    /// Installs the npm package if missing (panicking with a message naming
    /// the missing tool if node or npm is absent), starts the provider for
    /// this client and these accounts, and waits for its issuer line (60 s;
    /// on failure the panic includes its stderr).
    pub async fn start(
        client_id: &str,
        client_secret: &str,
        redirect_uris: &[String],
        accounts: &[Account],
    ) -> Provider {
        let node_modules = tokio::task::spawn_blocking(install)
            .await
            .expect("the npm install task panicked");
        let config = json!({
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uris": redirect_uris,
            "accounts": accounts.iter().map(Account::to_json).collect::<Vec<_>>(),
        });
        let mut child = Command::new("node")
            .arg(oidc_dir().join("provider.mjs"))
            .arg(config.to_string())
            .env("CALLBOARD_OIDC_NODE_MODULES", &node_modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting node tests/oidc/provider.mjs");
        let stdin = child.stdin.take();
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || keep_stderr(pipe, &sink));
        }
        let (line_tx, line_rx) = tokio::sync::oneshot::channel();
        if let Some(pipe) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut lines = BufReader::new(pipe).lines();
                let first = lines.next().and_then(Result::ok);
                let _ = line_tx.send(first);
                // Keep draining so that a chatty provider never blocks on a full pipe.
                for _ in lines {}
            });
        }
        let mut provider = Provider {
            issuer: String::new(),
            child,
            stdin,
            stderr,
            http: reqwest::Client::new(),
        };
        let line = match tokio::time::timeout(START_TIMEOUT, line_rx).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => provider.fail("exited before printing its issuer line"),
            Err(_) => provider.fail(&format!(
                "printed no issuer line within {}s",
                START_TIMEOUT.as_secs()
            )),
        };
        let issuer = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["issuer"].as_str().map(str::to_owned));
        match issuer {
            Some(issuer) => provider.issuer = issuer,
            None => provider.fail(&format!("printed {line:?}, not {{\"issuer\":...}}")),
        }
        provider
    }

    /// What the provider wrote to stderr so far (its errors), up to 64 KiB.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// An ID token with `claims` (a JSON object) over the defaults
    /// `iss` = the issuer, `iat` = now, `exp` = now + 600 s, plus the account's
    /// claims when `claims.sub` names one; `aud` and `nonce` are only there
    /// if given. An expired token: `{"exp": unix_now() - 3600, ...}`.
    pub async fn mint_id_token(&self, claims: Value, key: TokenKey) -> String {
        let answer: Value = self
            .test_route(
                "id-token",
                &json!({ "claims": claims, "key": key.as_str() }),
            )
            .await
            .json()
            .await
            .expect("POST /test/id-token: not JSON");
        answer["id_token"]
            .as_str()
            .unwrap_or_else(|| panic!("POST /test/id-token answered {answer}"))
            .to_owned()
    }

    /// Makes the token endpoint's next successful answer carry, instead of
    /// the ID token it issued, one with that token's claims overridden by
    /// `overrides` (a JSON object, may be empty) and signed with `key`. One
    /// shot: the answer after it is genuine again.
    pub async fn tamper_next_id_token(&self, overrides: Value, key: TokenKey) {
        self.test_route(
            "tamper-next-id-token",
            &json!({ "claims": overrides, "key": key.as_str() }),
        )
        .await;
    }

    async fn test_route(&self, route: &str, body: &Value) -> reqwest::Response {
        let url = format!("{}/test/{route}", self.issuer);
        let response = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}\nprovider stderr:\n{}", self.stderr()));
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            panic!("POST {url}: {status}: {text}");
        }
        response
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Let the stderr thread read what the process wrote before it died.
        std::thread::sleep(Duration::from_millis(100));
        panic!(
            "the OpenID provider (node tests/oidc/provider.mjs) {what}; its stderr:\n{}",
            self.stderr()
        )
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keep_stderr(mut pipe: impl std::io::Read, sink: &Mutex<String>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf[..n]);
        if let Ok(mut s) = sink.lock() {
            let room = STDERR_CAP.saturating_sub(s.len());
            s.extend(text.chars().scan(0, |used, c| {
                *used += c.len_utf8();
                (*used <= room).then_some(c)
            }));
        }
    }
}

fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

/// Installs tests/oidc's locked packages into the cache once.
fn install() -> PathBuf {
    callboard_test_npm::Packages {
        dir: &oidc_dir(),
        cache: "npm-oidc",
        cache_env: "CALLBOARD_OIDC_NPM_CACHE",
        probe: "oidc-provider",
        needed_by: "the OpenID Connect sign-in tests need a real provider (npm package oidc-provider)",
    }
    .install()
}

/// Seconds since the epoch, for `exp`/`iat` claims.
pub fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A compact JWS's header and payload, decoded (the signature unchecked).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = |what: &str| {
        let part = parts
            .next()
            .unwrap_or_else(|| panic!("{token:?} has no {what}"));
        let bytes = base64url_decode(part)
            .unwrap_or_else(|| panic!("the {what} of {token:?} is not base64url"));
        serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|e| panic!("the {what} of {token:?} is not JSON: {e}"))
    };
    (next("header"), next("payload"))
}

/// Unpadded base64url, as JOSE writes it.
pub fn base64url_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Decodes unpadded base64url; `None` on any other character.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= u32::from(value(*c)?) << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// A browser's cookies, kept per origin (scheme, host and port) as
/// `name=value` with their `Path`; `Max-Age<=0` or a past `Expires` deletes.
/// `Domain`, `Secure` and `SameSite` are ignored: every origin in the tests is
/// its own 127.0.0.1 port, and every request here is a top-level navigation.
#[derive(Debug, Default, Clone)]
pub struct CookieJar {
    cookies: Vec<StoredCookie>,
}

#[derive(Debug, Clone)]
struct StoredCookie {
    origin: String,
    name: String,
    value: String,
    path: String,
}

fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// RFC 6265 §5.1.4 path-match.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || request
            .strip_prefix(cookie)
            .is_some_and(|rest| cookie.ends_with('/') || rest.starts_with('/'))
}

impl CookieJar {
    /// Takes the `Set-Cookie` headers of a response to `url`.
    pub fn store(&mut self, url: &Url, headers: &HeaderMap) {
        let origin = origin_of(url);
        for header in headers.get_all(SET_COOKIE) {
            let Ok(header) = header.to_str() else {
                continue;
            };
            let mut parts = header.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            let mut path = None;
            let mut delete = false;
            for attribute in parts {
                let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
                let (key, val) = (key.trim().to_ascii_lowercase(), val.trim());
                match key.as_str() {
                    "path" if val.starts_with('/') => path = Some(val.to_owned()),
                    "max-age" => delete |= val.parse::<i64>().is_ok_and(|s| s <= 0),
                    "expires" => {
                        delete |= jiff::fmt::rfc2822::DateTimeParser::new()
                            .parse_timestamp(val)
                            .is_ok_and(|t| t <= jiff::Timestamp::now());
                    }
                    _ => {}
                }
            }
            // RFC 6265 §5.1.4 default-path: the request path up to its last '/'.
            let path = path.unwrap_or_else(|| match url.path().rfind('/') {
                Some(0) | None => "/".to_owned(),
                Some(i) => url.path()[..i].to_owned(),
            });
            self.cookies
                .retain(|c| !(c.origin == origin && c.name == name && c.path == path));
            if !delete {
                self.cookies.push(StoredCookie {
                    origin: origin.clone(),
                    name,
                    value,
                    path,
                });
            }
        }
    }

    /// The `Cookie` header a browser sends to `url`: longer paths first.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let origin = origin_of(url);
        let mut matching: Vec<&StoredCookie> = self
            .cookies
            .iter()
            .filter(|c| c.origin == origin && path_matches(url.path(), &c.path))
            .collect();
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let header = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ");
        (!header.is_empty()).then_some(header)
    }

    /// The value of cookie `name` that a request to `url` would carry.
    pub fn value(&self, url: &Url, name: &str) -> Option<String> {
        let origin = origin_of(url);
        self.cookies
            .iter()
            .filter(|c| c.origin == origin && c.name == name && path_matches(url.path(), &c.path))
            .max_by_key(|c| c.path.len())
            .map(|c| c.value.clone())
    }
}

/// A client for [`sign_in_flow`]: it follows no redirect by itself.
pub fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building a reqwest client")
}

/// [`sign_in_flow_with`] in a fresh cookie jar.
pub async fn sign_in_flow(
    client: &reqwest::Client,
    start_url: &str,
    login: &str,
) -> (reqwest::Response, Vec<String>) {
    sign_in_flow_with(client, &mut CookieJar::default(), start_url, login).await
}

/// Drives the browser side of a sign-in with `client` (which must not follow
/// redirects, see [`browser_client`]) and `jar`: GETs `start_url` (the
/// portal's sign-in URL), then follows each 3xx by hand, setting
/// `login_hint=<login>` on the authorization request (the first request off
/// the portal's origin with a `response_type`), through the provider's
/// interaction and back to the portal. Returns the portal's response to the
/// first request back on its origin (the callback: not followed even if a
/// redirect), or any non-redirect response before that (an error page), with
/// every URL requested, in order. Panics on a transport error or after
/// 20 hops.
pub async fn sign_in_flow_with(
    client: &reqwest::Client,
    jar: &mut CookieJar,
    start_url: &str,
    login: &str,
) -> (reqwest::Response, Vec<String>) {
    let mut url = Url::parse(start_url).unwrap_or_else(|e| panic!("start URL {start_url:?}: {e}"));
    let portal = url.origin();
    let mut left_portal = false;
    let mut visited = Vec::new();
    for _ in 0..MAX_HOPS {
        let at_portal = url.origin() == portal;
        if !at_portal {
            if !left_portal && url.query_pairs().any(|(k, _)| k == "response_type") {
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != "login_hint")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                url.query_pairs_mut()
                    .clear()
                    .extend_pairs(pairs)
                    .append_pair("login_hint", login);
            }
            left_portal = true;
        }
        visited.push(url.to_string());
        let mut request = client.get(url.clone());
        if let Some(cookies) = jar.header_for(&url) {
            request = request.header(COOKIE, cookies);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}\nvisited: {visited:#?}"));
        jar.store(&url, response.headers());
        if (at_portal && left_portal) || !response.status().is_redirection() {
            return (response, visited);
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or_else(|| panic!("{} from {url} without a Location", response.status()));
        url = url
            .join(location)
            .unwrap_or_else(|e| panic!("{url} redirected to {location:?}: {e}"));
    }
    panic!("more than {MAX_HOPS} redirects: {visited:#?}")
}

/// A minimal relying party (discovery, PKCE S256, code exchange) against
/// the real provider, proving the provider and the driver above.
mod self_check {
    use std::collections::HashMap;

    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};

    use super::*;

    const CLIENT_ID: &str = "callboard-test";
    const CLIENT_SECRET: &str = "s3cret-for-tests-only";

    #[derive(Clone)]
    struct Rp {
        base: String,
        discovery: Value,
        http: reqwest::Client,
        /// state -> (nonce, code_verifier)
        pending: Arc<Mutex<HashMap<String, (String, String)>>>,
    }

    fn random() -> String {
        callboard::auth::random_hex().unwrap()
    }

    async fn login(State(rp): State<Rp>) -> Response {
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = base64url_encode(&callboard::auth::digest(&verifier));
        rp.pending
            .lock()
            .unwrap()
            .insert(state.clone(), (nonce.clone(), verifier));
        let mut url = Url::parse(rp.discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", CLIENT_ID)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email profile groups")
            .append_pair("redirect_uri", &format!("{}/callback", rp.base))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        (
            StatusCode::FOUND,
            [
                (header::LOCATION, url.to_string()),
                (
                    header::SET_COOKIE,
                    format!("rp_state={state}; Path=/callback; HttpOnly"),
                ),
            ],
        )
            .into_response()
    }

    async fn callback(
        State(rp): State<Rp>,
        headers: HeaderMap,
        Query(query): Query<HashMap<String, String>>,
    ) -> Response {
        let cookie = headers
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let state = query.get("state").cloned().unwrap_or_default();
        if cookie != format!("rp_state={state}") {
            return (
                StatusCode::BAD_REQUEST,
                format!("cookie {cookie:?} for state {state}"),
            )
                .into_response();
        }
        if query.get("iss").map(String::as_str) != rp.discovery["issuer"].as_str() {
            return (
                StatusCode::BAD_REQUEST,
                format!("iss {:?}", query.get("iss")),
            )
                .into_response();
        }
        let Some((nonce, verifier)) = rp.pending.lock().unwrap().remove(&state) else {
            return (StatusCode::BAD_REQUEST, "unknown state").into_response();
        };
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair(
                "code",
                query.get("code").map(String::as_str).unwrap_or_default(),
            )
            .append_pair("redirect_uri", &format!("{}/callback", rp.base))
            .append_pair("code_verifier", &verifier)
            .finish();
        let tokens = rp
            .http
            .post(rp.discovery["token_endpoint"].as_str().unwrap())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        let status = tokens.status();
        let tokens: Value = tokens.json().await.unwrap();
        if !status.is_success() {
            return (StatusCode::BAD_GATEWAY, tokens.to_string()).into_response();
        }
        (
            [(header::SET_COOKIE, "rp_state=; Path=/callback; Max-Age=0")],
            axum::Json(json!({ "tokens": tokens, "nonce": nonce })),
        )
            .into_response()
    }

    /// Whether `token`'s RS256 signature verifies against `jwks`, checked by
    /// Node's own crypto (not the provider library).
    async fn signature_valid(jwks: &Value, token: &str) -> bool {
        const SCRIPT: &str = r"
            const crypto = require('node:crypto');
            const [jwks, token] = process.argv.slice(1);
            const [h, p, s] = token.split('.');
            const header = JSON.parse(Buffer.from(h, 'base64url'));
            const key = JSON.parse(jwks).keys.find((k) => k.kid === header.kid);
            const ok = header.alg === 'RS256' && key !== undefined && crypto.verify('sha256',
              Buffer.from(`${h}.${p}`), crypto.createPublicKey({ key, format: 'jwk' }),
              Buffer.from(s, 'base64url'));
            console.log(ok ? 'valid' : 'invalid');";
        let (jwks, token) = (jwks.to_string(), token.to_owned());
        let out = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .args(["-e", SCRIPT, &jwks, &token])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.trim() == "valid"
    }

    /// The relying party's JSON answer at the end of a flow.
    async fn rp_answer(response: reqwest::Response, visited: &[String]) -> Value {
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "{body}\nvisited: {visited:#?}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}\nvisited: {visited:#?}"))
    }

    #[tokio::test]
    async fn a_relying_party_signs_in_with_pkce_and_gets_the_claims() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let alice = Account {
            sub: "alice-sub".into(),
            email: "alice@example.com".into(),
            email_verified: true,
            name: "Alice".into(),
            groups: vec!["team-a".into()],
            preferred_username: "alice".into(),
        };
        let bob = Account::new("bob", &["team-b", "admins"]);
        let provider = Provider::start(
            CLIENT_ID,
            CLIENT_SECRET,
            &[format!("{base}/callback")],
            &[alice, bob],
        )
        .await;

        let http = reqwest::Client::new();
        let discovery: Value = http
            .get(format!(
                "{}/.well-known/openid-configuration",
                provider.issuer
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(discovery["issuer"], provider.issuer.as_str());
        assert_eq!(
            discovery["code_challenge_methods_supported"],
            json!(["S256"])
        );
        let jwks: Value = http
            .get(discovery["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rp = Rp {
            base: base.clone(),
            discovery,
            http,
            pending: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/login", axum::routing::get(login))
            .route("/callback", axum::routing::get(callback))
            .with_state(rp);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        // The whole flow, with cookies kept per origin.
        let client = browser_client();
        let mut jar = CookieJar::default();
        let start = format!("{base}/login");
        let (response, visited) = sign_in_flow_with(&client, &mut jar, &start, "alice").await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(
            status,
            200,
            "{body}\nvisited: {visited:#?}\n{}",
            provider.stderr()
        );
        let callback_url = Url::parse(&format!("{base}/callback")).unwrap();
        assert_eq!(
            jar.value(&callback_url, "rp_state"),
            None,
            "Max-Age=0 deletes"
        );
        assert!(visited[1].contains("login_hint=alice"), "{visited:#?}");
        assert!(
            visited.iter().any(|u| u.contains("/interaction/")),
            "{visited:#?}"
        );
        assert!(
            visited
                .last()
                .unwrap()
                .starts_with(&format!("{base}/callback?code="))
        );
        let answer: Value = serde_json::from_str(&body).unwrap();
        let id_token = answer["tokens"]["id_token"].as_str().unwrap();
        let (header, claims) = jwt_parts(id_token);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(claims["iss"], provider.issuer.as_str());
        assert_eq!(claims["aud"], CLIENT_ID);
        assert_eq!(claims["sub"], "alice-sub");
        assert_eq!(claims["nonce"], answer["nonce"]);
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["name"], "Alice");
        assert_eq!(claims["preferred_username"], "alice");
        assert_eq!(claims["groups"], json!(["team-a"]));
        let exp = claims["exp"].as_i64().unwrap();
        assert!(
            (unix_now() + 500..=unix_now() + 700).contains(&exp),
            "{claims}"
        );
        assert!(signature_valid(&jwks, id_token).await);

        // The same browser switches to bob: the provider signs bob in.
        let (response, visited) = sign_in_flow_with(&client, &mut jar, &start, "bob").await;
        let answer = rp_answer(response, &visited).await;
        let (_, claims) = jwt_parts(answer["tokens"]["id_token"].as_str().unwrap());
        assert_eq!(claims["sub"], "bob-sub");
        assert_eq!(claims["name"], "Bob");
        assert_eq!(claims["groups"], json!(["team-b", "admins"]));

        // Tampering: the next token answer carries a forged token, the one after is genuine.
        provider
            .tamper_next_id_token(json!({ "nonce": "not-yours" }), TokenKey::Foreign)
            .await;
        let (response, visited) = sign_in_flow(&client, &start, "alice").await;
        let answer = rp_answer(response, &visited).await;
        let forged = answer["tokens"]["id_token"].as_str().unwrap();
        let (header, claims) = jwt_parts(forged);
        assert_eq!(
            header["kid"], jwks["keys"][0]["kid"],
            "same kid as the real key"
        );
        assert_eq!(claims["nonce"], "not-yours");
        assert_eq!(claims["sub"], "alice-sub");
        assert_eq!(claims["email"], "alice@example.com");
        assert!(!signature_valid(&jwks, forged).await);
        let (response, visited) = sign_in_flow(&client, &start, "alice").await;
        let answer = rp_answer(response, &visited).await;
        let genuine = answer["tokens"]["id_token"].as_str().unwrap();
        assert_eq!(jwt_parts(genuine).1["nonce"], answer["nonce"]);
        assert!(signature_valid(&jwks, genuine).await);

        // Minted tokens: expired but genuinely signed; foreign; unsigned.
        let expired = provider
            .mint_id_token(
                json!({ "sub": "alice-sub", "aud": CLIENT_ID, "nonce": "n", "exp": unix_now() - 3600 }),
                TokenKey::Provider,
            )
            .await;
        let (_, claims) = jwt_parts(&expired);
        assert!(claims["exp"].as_i64().unwrap() < unix_now());
        assert_eq!(
            (
                &claims["iss"],
                &claims["aud"],
                &claims["nonce"],
                &claims["email"]
            ),
            (
                &json!(provider.issuer),
                &json!(CLIENT_ID),
                &json!("n"),
                &json!("alice@example.com")
            )
        );
        assert!(signature_valid(&jwks, &expired).await);
        let foreign = provider
            .mint_id_token(
                json!({ "sub": "alice-sub", "aud": CLIENT_ID }),
                TokenKey::Foreign,
            )
            .await;
        assert!(jwt_parts(&foreign).1["exp"].as_i64().unwrap() > unix_now());
        assert!(!signature_valid(&jwks, &foreign).await);
        let unsigned = provider
            .mint_id_token(
                json!({ "sub": "alice-sub", "aud": CLIENT_ID }),
                TokenKey::Unsigned,
            )
            .await;
        assert_eq!(jwt_parts(&unsigned).0["alg"], "none");
        assert!(unsigned.ends_with('.'));

        // An unknown login stops at the provider with a 400.
        let (response, visited) = sign_in_flow(&client, &start, "mallory").await;
        assert_eq!(response.status(), 400);
        assert!(
            visited.last().unwrap().contains("/interaction/"),
            "{visited:#?}"
        );
        assert!(response.text().await.unwrap().contains("mallory"));
        assert_eq!(provider.stderr(), "", "the provider logged errors");
    }

    #[test]
    fn the_jar_keeps_cookies_per_origin_and_path() {
        let mut jar = CookieJar::default();
        let a = Url::parse("http://127.0.0.1:1000/auth/x/y").unwrap();
        let b = Url::parse("http://127.0.0.1:2000/auth/x/y").unwrap();
        let mut headers = HeaderMap::new();
        for c in [
            "s=1; Path=/; HttpOnly",
            "i=2; path=/auth/x; SameSite=Lax",
            "d=3",
            "gone=4; Path=/",
        ] {
            headers.append(SET_COOKIE, c.parse().unwrap());
        }
        jar.store(&a, &headers);
        assert_eq!(jar.header_for(&a).as_deref(), Some("i=2; d=3; s=1; gone=4"));
        assert_eq!(jar.header_for(&b), None, "another port is another origin");
        let other = Url::parse("http://127.0.0.1:1000/auth/xz").unwrap();
        assert_eq!(jar.header_for(&other).as_deref(), Some("s=1; gone=4"));
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, "gone=; Path=/; Max-Age=0".parse().unwrap());
        headers.append(
            SET_COOKIE,
            "i=; path=/auth/x; expires=Thu, 01 Jan 1970 00:00:00 GMT"
                .parse()
                .unwrap(),
        );
        headers.append(SET_COOKIE, "s=5; Path=/".parse().unwrap());
        jar.store(&a, &headers);
        assert_eq!(jar.header_for(&a).as_deref(), Some("d=3; s=5"));
        assert_eq!(jar.value(&a, "s").as_deref(), Some("5"));
    }

    #[test]
    fn base64url_round_trips() {
        for text in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "\u{ff}\u{fe}?>",
        ] {
            let encoded = base64url_encode(text.as_bytes());
            assert!(!encoded.contains(['=', '+', '/']));
            assert_eq!(base64url_decode(&encoded).unwrap(), text.as_bytes());
        }
        assert_eq!(base64url_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url_decode("a"), None);
        assert_eq!(base64url_decode("a+b="), None);
    }
}

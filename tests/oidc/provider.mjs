// A real OpenID Connect provider for Callboard's tests: panva's `oidc-provider`
// (tests/oidc/package.json), on 127.0.0.1, driven by tests/integration/oidc.rs.
//
//   node provider.mjs '<config json>'
//
// Config: { "client_id", "client_secret", "redirect_uris": [..],
//           "token_endpoint_auth_method"?: "client_secret_basic" (default) | "client_secret_post",
//           "accounts": [{ "sub", "email", "email_verified", "name", "groups", "preferred_username" }, ..] }
// The package is loaded from $CALLBOARD_OIDC_NODE_MODULES when set (ESM ignores
// NODE_PATH), else resolved normally.
//
// Prints one line `{"issuer":"http://127.0.0.1:<port>"}` once listening, and
// exits when stdin closes, so a test that dies never leaves it behind.
//
// Login with a hint is non-interactive: GET /interaction/:uid signs in the
// account named by the authorization request's `login_hint` (its sub,
// preferred_username or email), then grants what the client asked for,
// answering with redirects only (a browser and a plain HTTP client follow the
// same path). An unknown login_hint: 400. With a provider session already open,
// a login_hint naming another account signs that one in; none, or the same one,
// reuses the session.
//
// Without a login_hint (a person in a browser), GET /interaction/:uid answers a
// minimal login page: a form with one text field `login` posting to
// POST /interaction/:uid/login, which signs in the account it names (same
// matching as the hint; unknown or missing: 400) and then grants consent like
// the hint path.
//
// TEST-ONLY routes (this file is never shipped):
//   POST /test/id-token            {"claims": {..}, "key": "provider"|"foreign"|"none"}
//        -> {"id_token": "<compact JWS>"}: `claims` over defaults iss=issuer,
//           iat=now, exp=now+600 (plus the account's claims when `sub` names one).
//   POST /test/tamper-next-id-token {"claims": {..}, "key": ..}
//        -> 204; the next token-endpoint response carries, instead of its real ID
//           token, one with the real token's claims overridden by `claims` and
//           signed with `key`. One shot.
// "provider" signs with the provider's key (the one in its JWKS); "foreign" with
// a key that is NOT in the JWKS but carries the same `kid` (so only a signature
// check catches it); "none" is an unsecured `alg: none` token.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const MAX_BODY = 64 * 1024;

// The library's development notices go through console.info/warn with this
// prefix; the tests configure everything they ask about, so drop them.
for (const level of ['info', 'warn']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider ')) return;
    original(...args);
  };
}

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

async function loadLibrary() {
  const dir = process.env.CALLBOARD_OIDC_NODE_MODULES;
  if (!dir) return import('oidc-provider');
  const require = createRequire(path.join(dir, 'noop.js'));
  return import(pathToFileURL(require.resolve('oidc-provider')).href);
}

let config;
try {
  config = JSON.parse(process.argv[2] ?? '');
} catch (e) {
  fail(`the first argument must be the JSON config: ${e.message}`);
}
for (const field of ['client_id', 'client_secret']) {
  if (typeof config[field] !== 'string' || !config[field]) fail(`config.${field} must be a non-empty string`);
}
if (!Array.isArray(config.redirect_uris) || config.redirect_uris.length === 0) {
  fail('config.redirect_uris must be a non-empty list');
}
const accounts = Array.isArray(config.accounts) ? config.accounts : [];
for (const [i, a] of accounts.entries()) {
  if (typeof a?.sub !== 'string' || !a.sub) fail(`config.accounts[${i}].sub must be a non-empty string`);
}

function accountByLogin(login) {
  if (typeof login !== 'string' || !login) return undefined;
  return accounts.find((a) => a.sub === login || a.preferred_username === login || a.email === login);
}

function accountClaims(a) {
  const claims = { sub: a.sub };
  for (const k of ['email', 'email_verified', 'name', 'preferred_username', 'groups']) {
    if (a[k] !== undefined) claims[k] = a[k];
  }
  return claims;
}

// Signing keys: the provider's (published in its JWKS) and a foreign one that
// shares its kid.
function rsaJwk() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ format: 'jwk' });
}
const KID = crypto.randomBytes(8).toString('hex');
const realJwk = { ...rsaJwk(), kid: KID, alg: 'RS256', use: 'sig' };
const foreignJwk = { ...rsaJwk(), kid: KID, alg: 'RS256', use: 'sig' };

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function signJws(payload, key) {
  if (key === 'none') return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`;
  const jwk = key === 'foreign' ? foreignJwk : realJwk;
  const input = `${b64url({ alg: 'RS256', typ: 'JWT', kid: KID })}.${b64url(payload)}`;
  const signature = crypto.sign('sha256', Buffer.from(input), crypto.createPrivateKey({ key: jwk, format: 'jwk' }));
  return `${input}.${signature.toString('base64url')}`;
}

function parseSpec(body) {
  const spec = JSON.parse(body || '{}');
  const key = spec.key ?? 'provider';
  if (!['provider', 'foreign', 'none'].includes(key)) throw new Error(`key must be provider, foreign or none, not ${JSON.stringify(key)}`);
  const claims = spec.claims ?? {};
  if (typeof claims !== 'object' || Array.isArray(claims) || claims === null) throw new Error('claims must be an object');
  return { key, claims };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error(`body over ${MAX_BODY} bytes`));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'cache-control': 'no-store',
  });
  res.end(text);
}

const { default: Provider, interactionPolicy } = await loadLibrary();

// A login_hint naming another account than the session's signs that one in
// (so one cookie jar or browser can switch users), as a real IdP would.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'login_hint_names_another_account',
  'login_hint names another account than the signed-in one',
  (ctx) => {
    const hinted = accountByLogin(ctx.oidc.params.login_hint);
    const current = ctx.oidc.session.accountId;
    return hinted && current && hinted.sub !== current
      ? interactionPolicy.Check.REQUEST_PROMPT
      : interactionPolicy.Check.NO_NEED_TO_PROMPT;
  },
));

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    redirect_uris: config.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: config.token_endpoint_auth_method ?? 'client_secret_basic',
  }],
  jwks: { keys: [realJwk] },
  cookies: {
    keys: [crypto.randomBytes(32).toString('hex')],
    // `none` without `Secure` is refused by browsers on plain http.
    long: { httpOnly: true, sameSite: 'lax', signed: true },
    short: { httpOnly: true, sameSite: 'lax', signed: true },
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false,
  pkce: { methods: ['S256'], required: () => true },
  features: {
    devInteractions: { enabled: false },
    // Discovery still advertises the endpoint; the provider is the whole
    // OpenID Connect Core provider, the ID token is what the portal uses.
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: false },
  },
  interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = accounts.find((a) => a.sub === sub);
    if (!account) return undefined;
    return { accountId: sub, claims: async () => accountClaims(account) };
  },
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
});

// TEST-ONLY: the next token response's ID token is replaced (see the header).
let tamperNext = null;
provider.use(async (ctx, next) => {
  await next();
  if (tamperNext && ctx.oidc?.route === 'token' && ctx.status === 200 && ctx.body?.id_token) {
    const { key, claims } = tamperNext;
    tamperNext = null;
    const real = JSON.parse(Buffer.from(ctx.body.id_token.split('.')[1], 'base64url').toString('utf8'));
    ctx.body.id_token = signJws({ ...real, ...claims }, key);
  }
});

provider.on('server_error', (ctx, err) => {
  process.stderr.write(`provider.mjs: server_error on ${ctx.method} ${ctx.path}: ${err.stack ?? err}\n`);
});

// Signs `account` in for the interaction `details` (answering with the
// redirect back to the authorization endpoint).
async function finishLogin(req, res, details, account) {
  const { session } = details;
  if (session?.accountId && session.accountId !== account.sub) {
    // Switching users: end the old session here (the library would
    // otherwise ask the browser to confirm a logout with a form), and
    // detach this interaction from it.
    await (await provider.Session.findByUid(session.uid))?.destroy();
    details.session = undefined;
    await details.save(details.exp - Math.floor(Date.now() / 1000));
  }
  await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
}

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// The login page for a browser: one field, the account's login.
function loginPage(res, uid) {
  const action = `/interaction/${encodeURIComponent(uid)}/login`;
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · test OpenID provider</title></head>
<body><h1>Test OpenID provider</h1>
<form method="post" action="${escapeHtml(action)}">
<label for="login">Login</label> <input id="login" name="login" type="text" autocomplete="username" autofocus>
<button id="submit" type="submit">Sign in</button>
</form></body></html>
`);
}

// GET /interaction/:uid: login by login_hint (or the login page without
// one), then consent to what was asked.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session, grantId } = details;
  if (prompt.name === 'login') {
    if (!params.login_hint) {
      loginPage(res, details.uid);
      return;
    }
    const account = accountByLogin(params.login_hint);
    if (!account) {
      send(res, 400, `unknown login_hint ${JSON.stringify(params.login_hint)}`);
      return;
    }
    await finishLogin(req, res, details, account);
    return;
  }
  if (prompt.name === 'consent') {
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    return;
  }
  send(res, 501, `prompt ${prompt.name} is not handled by the test provider`);
}

// POST /interaction/:uid/login (the login page's form): sign in the account
// the `login` field names.
async function loginSubmitted(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name !== 'login') {
    send(res, 400, `the interaction asks for ${details.prompt.name}, not a login`);
    return;
  }
  const login = new URLSearchParams(await readBody(req)).get('login') ?? '';
  const account = accountByLogin(login);
  if (!account) {
    send(res, 400, login ? `unknown login ${JSON.stringify(login)}` : 'the form has no login');
    return;
  }
  await finishLogin(req, res, details, account);
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(url.pathname)) {
      await interaction(req, res);
    } else if (req.method === 'POST' && /^\/interaction\/[^/]+\/login$/.test(url.pathname)) {
      await loginSubmitted(req, res);
    } else if (req.method === 'POST' && url.pathname === '/test/id-token') {
      const { key, claims } = parseSpec(await readBody(req));
      const now = Math.floor(Date.now() / 1000);
      const account = accounts.find((a) => a.sub === claims.sub);
      const payload = { iss: issuer, iat: now, exp: now + 600, ...(account ? accountClaims(account) : {}), ...claims };
      send(res, 200, { id_token: signJws(payload, key) });
    } else if (req.method === 'POST' && url.pathname === '/test/tamper-next-id-token') {
      tamperNext = parseSpec(await readBody(req));
      res.writeHead(204).end();
    } else if (url.pathname.startsWith('/test/')) {
      send(res, 404, `no test route ${req.method} ${url.pathname}`);
    } else {
      callback(req, res);
    }
  } catch (e) {
    if (!res.headersSent) send(res, 400, `${e.name}: ${e.message}`);
    else res.destroy();
  }
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

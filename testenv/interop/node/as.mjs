// A real OAuth 2.0 authorization server (oidc-provider) for certbind's interoperability tests.
// Usage: node as.mjs CONFIG.json. The protocol (config, the ready line, the stdin commands) is
// described in README.md beside this file.
//
// stdout carries only protocol lines; everything else goes to stderr, one line per event.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { createInterface } from 'node:readline';

import Provider, { errors } from 'oidc-provider';

import { certificateSubjectMatches } from './certmatch.mjs';

// oidc-provider prints its notices with console.info; keep stdout for the protocol.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function logLine(fields) {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

function die(message) {
  logLine({ level: 'fatal', msg: message });
  process.exit(2);
}

// ---- configuration --------------------------------------------------------------------------

if (process.argv.length !== 3) die('usage: node as.mjs CONFIG.json');

let config;
try {
  config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch (err) {
  die(`reading config: ${err.message}`);
}

function checkKeys(keys, where) {
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`${where}: keys must be a non-empty array`);
  keys.forEach((k, i) => {
    if (!k || typeof k !== 'object' || typeof k.kty !== 'string') throw new Error(`${where}: key ${i} is not a JWK`);
    if (typeof k.d !== 'string') throw new Error(`${where}: key ${i} is not a private JWK`);
    if (typeof k.kid !== 'string' || !k.kid) throw new Error(`${where}: key ${i} has no kid`);
  });
  return keys;
}

let tlsCert;
let tlsKey;
let clientCA;
try {
  tlsCert = readFileSync(config.tls_cert);
  tlsKey = readFileSync(config.tls_key);
  // Optional: with client_ca the HTTPS listener verifies client certificates against it and
  // tls_client_auth requires a verified chain; without it any presented certificate counts as
  // verified (the registered subject must still match).
  clientCA = config.client_ca ? readFileSync(config.client_ca) : undefined;
  if (!Array.isArray(config.providers) || config.providers.length === 0) throw new Error('providers must be a non-empty array');
  const names = new Set();
  for (const p of config.providers) {
    if (typeof p.name !== 'string' || !p.name) throw new Error('every provider needs a name');
    if (names.has(p.name)) throw new Error(`duplicate provider ${p.name}`);
    names.add(p.name);
    checkKeys(p.keys, `provider ${p.name}`);
  }
  if (!Array.isArray(config.clients)) throw new Error('clients must be an array');
  if (!config.resources || typeof config.resources !== 'object') throw new Error('resources must be an object');
  for (const [uri, r] of Object.entries(config.resources)) {
    if (!['jwt', 'opaque'].includes(r.format)) throw new Error(`resource ${uri}: format must be "jwt" or "opaque"`);
  }
} catch (err) {
  die(`config: ${err.message}`);
}

// ---- client certificates --------------------------------------------------------------------

const LISTENER = Symbol('listener');

// RFC 9440 Client-Cert: an sf-binary, ":" base64(DER) ":". Only the plain-HTTP listener reads it.
function certFromHeader(value) {
  if (value === undefined || value === '') return undefined;
  const m = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(value.trim());
  if (!m) {
    logLine({ level: 'warn', msg: 'malformed client-cert header ignored' });
    return undefined;
  }
  try {
    return new X509Certificate(Buffer.from(m[1], 'base64'));
  } catch (err) {
    logLine({ level: 'warn', msg: `client-cert header is not a certificate: ${err.message}` });
    return undefined;
  }
}

function getCertificate(ctx) {
  const { req } = ctx;
  switch (req[LISTENER]) {
    case 'https':
      return req.socket.getPeerX509Certificate?.() ?? undefined;
    case 'http':
      return certFromHeader(req.headers['client-cert']);
    default:
      return undefined;
  }
}

function certificateAuthorized(ctx) {
  const { req } = ctx;
  switch (req[LISTENER]) {
    case 'https':
      return clientCA ? req.socket.authorized === true : true;
    case 'http':
      // The proxy in front sets client-cert only after it verified the certificate.
      return getCertificate(ctx) !== undefined;
    default:
      return false;
  }
}

// ---- storage --------------------------------------------------------------------------------

// An in-memory adapter whose store outlives a Provider rebuild (the "keys" command), one store
// per provider name, so tokens issued before a key swap can still be introspected.
function adapterFor(store) {
  const live = (key) => {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.value;
  };
  const put = (key, value, expiresIn) => {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(key, { value, expiresAt });
  };

  return class Adapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      put(this.key(id), payload, expiresIn);
      if (payload.grantId) {
        const gk = `grant:${payload.grantId}`;
        const members = live(gk) ?? [];
        members.push(this.key(id));
        put(gk, members, expiresIn);
      }
      if (payload.uid) put(`sessionUid:${payload.uid}`, id, expiresIn);
      if (payload.userCode) put(`userCode:${payload.userCode}`, id, expiresIn);
    }

    async find(id) {
      return live(this.key(id));
    }

    async findByUid(uid) {
      const id = live(`sessionUid:${uid}`);
      return id === undefined ? undefined : this.find(id);
    }

    async findByUserCode(userCode) {
      const id = live(`userCode:${userCode}`);
      return id === undefined ? undefined : this.find(id);
    }

    async consume(id) {
      const payload = live(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id) {
      store.delete(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const gk = `grant:${grantId}`;
      for (const key of live(gk) ?? []) store.delete(key);
      store.delete(gk);
    }
  };
}

// ---- providers ------------------------------------------------------------------------------

// Clients are passed through as they are; the one default added: a client that authenticates
// with a certificate gets certificate-bound tokens unless its metadata says otherwise.
function clientsFor() {
  return config.clients.map((c) => {
    const copy = structuredClone(c);
    if (
      ['tls_client_auth', 'self_signed_tls_client_auth'].includes(copy.token_endpoint_auth_method)
      && copy.tls_client_certificate_bound_access_tokens === undefined
    ) {
      copy.tls_client_certificate_bound_access_tokens = true;
    }
    return copy;
  });
}

// The JWS algorithm for a signing key: its own "alg", else the usual one for its type.
function algFor(jwk) {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === 'EC') return { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[jwk.crv] ?? 'ES256';
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'OKP') return 'Ed25519';
  return 'ES256';
}

async function buildProvider(state) {
  const signingKey = state.keys[0];
  const signingAlg = algFor(signingKey);
  const provider = new Provider(state.issuer, {
    adapter: adapterFor(state.store),
    clients: clientsFor(),
    jwks: { keys: structuredClone(state.keys) },
    clientAuthMethods: [
      'client_secret_basic',
      'client_secret_post',
      'private_key_jwt',
      'tls_client_auth',
      'self_signed_tls_client_auth',
      'none',
    ],
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      id_token_signed_response_alg: signingAlg,
    },
    ttl: {
      // A resource's "ttl" (seconds) if set, else oidc-provider's default of 10 minutes.
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || 10 * 60,
    },
    routes: {
      token: '/oauth2/token',
      introspection: '/oauth2/introspect',
      jwks: '/oauth2/jwks',
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // RFC 9449: a token request with a DPoP proof gets a token bound to the proof's key
      // (cnf.jkt, token_type DPoP); a client with dpop_bound_access_tokens must send one. No
      // server nonces: certbind's interop is about the resource server.
      dPoP: { enabled: true, requireNonce: () => false },
      introspection: {
        enabled: true,
        // Any authenticated client (a resource server) may introspect any client's token; a
        // public client only its own.
        allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
      },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate,
        certificateAuthorized,
        certificateSubjectMatches: (ctx, property, expected) => {
          const cert = getCertificate(ctx);
          if (!cert) return false;
          try {
            return certificateSubjectMatches(cert, property, expected);
          } catch (err) {
            logLine({ level: 'warn', provider: state.name, msg: `${property}: ${err.message}` });
            return false;
          }
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          const r = config.resources[resourceIndicator];
          if (!r) throw new errors.InvalidTarget();
          const info = {
            scope: typeof r.scope === 'string' ? r.scope : '',
            audience: resourceIndicator,
            accessTokenFormat: r.format,
          };
          if (Number.isInteger(r.ttl) && r.ttl > 0) info.accessTokenTTL = r.ttl;
          if (r.format === 'jwt') {
            info.jwt = { sign: { alg: signingAlg, kid: signingKey.kid } };
          }
          return info;
        },
      },
    },
  });
  provider.proxy = true;

  const errorEvents = [
    'server_error', 'grant.error', 'introspection.error', 'revocation.error', 'jwks.error',
    'discovery.error', 'userinfo.error', 'authorization.error',
  ];
  for (const event of errorEvents) {
    provider.on(event, (ctx, err) => {
      logLine({
        level: event === 'server_error' ? 'error' : 'info',
        provider: state.name,
        event,
        listener: ctx?.req?.[LISTENER],
        path: ctx?.path,
        client_id: ctx?.oidc?.client?.clientId,
        error: err?.error ?? err?.name,
        error_description: err?.error_description,
        detail: err?.error_detail ?? (event === 'server_error' ? err?.message : undefined),
      });
    });
  }
  // Koa's own error listener prints stack traces over many lines; one line instead.
  provider.on('error', (err, ctx) => {
    if (err?.expose) return;
    logLine({ level: 'error', provider: state.name, event: 'koa.error', path: ctx?.path, detail: err?.message });
  });

  // oidc-provider validates static clients on first use; do it now so that bad metadata fails
  // the start (or the keys command) instead of a later token request.
  for (const c of config.clients) {
    try {
      await provider.Client.find(String(c.client_id));
    } catch (err) {
      throw new Error(`client ${JSON.stringify(c.client_id)}: ${err.error_description ?? err.message}`);
    }
  }
  return provider;
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

const FORWARDED = ['forwarded', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-for', 'x-forwarded-port'];

async function startProvider(entry) {
  const state = {
    name: entry.name,
    keys: entry.keys,
    store: new Map(),
    handler: undefined,
  };

  const httpsServer = https.createServer({
    cert: tlsCert,
    key: tlsKey,
    ca: clientCA,
    requestCert: true,
    rejectUnauthorized: false,
  }, (req, res) => {
    req[LISTENER] = 'https';
    // Direct TLS clients are not behind a proxy: ignore their forwarding headers.
    for (const h of FORWARDED) delete req.headers[h];
    state.handler(req, res);
  });
  httpsServer.on('tlsClientError', (err) => {
    logLine({ level: 'info', provider: state.name, event: 'tls.error', detail: err.message });
  });

  const httpServer = http.createServer((req, res) => {
    req[LISTENER] = 'http';
    state.handler(req, res);
  });

  const httpsPort = await listen(httpsServer);
  const httpPort = await listen(httpServer);
  state.issuer = `https://localhost:${httpsPort}`;
  state.httpAddr = `127.0.0.1:${httpPort}`;
  state.servers = [httpsServer, httpServer];
  state.handler = (await buildProvider(state)).callback();
  return state;
}

// Fetches /oauth2/jwks through the plain listener and returns the kids it serves.
function servedKids(state) {
  const [host, port] = state.httpAddr.split(':');
  return new Promise((resolve, reject) => {
    const req = http.get({
      host,
      port: Number(port),
      path: '/oauth2/jwks',
      headers: { 'x-forwarded-proto': 'https', host: new URL(state.issuer).host },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        try {
          if (res.statusCode !== 200) throw new Error(`jwks answered ${res.statusCode}`);
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')).keys.map((k) => k.kid));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('jwks request timed out')));
  });
}

// ---- main -----------------------------------------------------------------------------------

const states = new Map();
try {
  for (const entry of config.providers) {
    states.set(entry.name, await startProvider(entry));
  }
} catch (err) {
  die(`starting: ${err.message}`);
}

emit({
  ready: true,
  providers: Object.fromEntries([...states].map(([name, s]) => [name, { issuer: s.issuer, http: s.httpAddr }])),
});

async function handleCommand(line) {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return { ok: false, error: 'command is not JSON' };
  }
  if (msg?.cmd !== 'keys') return { ok: false, error: `unknown command ${JSON.stringify(msg?.cmd)}` };
  const state = states.get(msg.provider);
  if (!state) return { ok: false, error: `unknown provider ${JSON.stringify(msg.provider)}` };
  try {
    const keys = checkKeys(msg.keys, `provider ${state.name}`);
    const next = { ...state, keys };
    const handler = (await buildProvider(next)).callback();
    state.keys = keys;
    state.handler = handler;
    const want = keys.map((k) => k.kid).sort();
    const got = (await servedKids(state)).sort();
    if (JSON.stringify(want) !== JSON.stringify(got)) {
      return { ok: false, error: `jwks serves ${got.join(',')}, expected ${want.join(',')}` };
    }
    logLine({ level: 'info', provider: state.name, msg: 'signing keys replaced', kids: want });
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err.message };
  }
}

let stopping = false;
function shutdown(reason) {
  if (stopping) return;
  stopping = true;
  logLine({ level: 'info', msg: `stopping: ${reason}` });
  for (const s of states.values()) {
    for (const server of s.servers) {
      server.close();
      server.closeAllConnections?.();
    }
  }
  setTimeout(() => process.exit(0), 200).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

// Commands are answered in order, one at a time.
let queue = Promise.resolve();
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (line.trim() === '') return;
  queue = queue.then(() => handleCommand(line)).then(emit, (err) => emit({ ok: false, error: err.message }));
});
rl.on('close', () => {
  queue.then(() => shutdown('stdin closed'));
});

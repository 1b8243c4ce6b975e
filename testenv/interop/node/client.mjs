// A real OAuth 2.0 client (openid-client, unmodified library behaviour) for certbind's
// interoperability tests. Mutual TLS goes through an undici Agent handed to openid-client as
// its customFetch. Every run prints exactly one JSON line on stdout; see README.md.
//
//   node client.mjs token    --issuer ISS --token-endpoint URL --client-id ID
//                            --auth tls_client_auth|self_signed_tls_client_auth|client_secret_basic|none
//                            [--secret S] [--dpop-key JWK] [--cert PEM --key PEM] [--ca PEM]
//                            [--resource R] [--scope S]
//   node client.mjs discover --issuer ISS --client-id ID [--cert PEM --key PEM] [--ca PEM]
//   node client.mjs call     --url URL --token AT [--dpop-key JWK] [--cert PEM --key PEM]
//                            [--ca PEM] [--issuer ISS]
//   node client.mjs send     --url URL [--method M] [--scheme Bearer|DPoP --token AT] [--host H]
//                            [--dpop PROOF | --dpop-key JWK [--htm M] [--htu URL]
//                            [--ath-token AT | --no-ath]] [--cert PEM --key PEM] [--ca PEM]
//   node client.mjs batch    [--cert PEM --key PEM] [--ca PEM] < COMMANDS.json
//
// call is the library's protected-resource request; send is a hand-made one, for the requests
// a correct client never makes (a proof replayed, made for another request, or missing).

// --allow-http lets openid-client talk plain HTTP (it refuses by default).
// Exit status: 0 whenever a JSON result was printed (OAuth and HTTP errors included), 2 for
// usage errors, 1 for crashes.
import { randomUUID, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { exportJWK, SignJWT } from 'jose';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';

const REASON_HEADER = 'x-certbind-reason';

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

class UsageError extends Error {}

const OPTIONS = {
  issuer: { type: 'string' },
  'token-endpoint': { type: 'string' },
  'client-id': { type: 'string' },
  auth: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  resource: { type: 'string' },
  scope: { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  secret: { type: 'string' },
  'dpop-key': { type: 'string' },
  method: { type: 'string' },
  scheme: { type: 'string' },
  host: { type: 'string' },
  dpop: { type: 'string' },
  htm: { type: 'string' },
  htu: { type: 'string' },
  'ath-token': { type: 'string' },
  'no-ath': { type: 'boolean', default: false },
  'allow-http': { type: 'boolean', default: false },
};

function parse(argv) {
  const [command, ...rest] = argv;
  const { values } = parseArgs({ args: rest, strict: true, allowPositionals: false, options: OPTIONS });
  return { command, opts: values };
}

function need(opts, ...names) {
  for (const n of names) {
    if (typeof opts[n] !== 'string' || opts[n] === '') throw new UsageError(`--${n} is required`);
  }
}

function parseURL(value, flag) {
  try {
    return new URL(value);
  } catch {
    throw new UsageError(`--${flag} is not a URL: ${JSON.stringify(value)}`);
  }
}

// The undici Agent that carries the client certificate (the file may hold leaf + intermediates)
// and, with --ca, the only trusted roots for the server certificate.
function makeAgent(opts) {
  if (!!opts.cert !== !!opts.key) throw new UsageError('--cert and --key go together');
  const connect = {};
  if (opts.cert) {
    connect.cert = readFileSync(opts.cert);
    connect.key = readFileSync(opts.key);
  }
  if (opts.ca) connect.ca = readFileSync(opts.ca);
  return new Agent({ connect });
}

function fetchVia(agent) {
  return (url, options) => undiciFetch(url, { ...options, dispatcher: agent });
}

function clientAuth(method, opts) {
  switch (method) {
    case 'client_secret_basic':
      if (!opts.secret) throw new UsageError('--auth client_secret_basic needs --secret');
      return client.ClientSecretBasic(opts.secret);
    // Both mutual-TLS methods send only client_id in the form body; the certificate is in TLS.
    case 'tls_client_auth':
    case 'self_signed_tls_client_auth':
      return client.TlsClientAuth();
    case 'none':
      return client.None();
    default:
      throw new UsageError('--auth must be tls_client_auth, self_signed_tls_client_auth, client_secret_basic or none');
  }
}

// ---- DPoP (RFC 9449) ------------------------------------------------------------------------

const EC_ALGS = { 'P-256': 'ES256', 'P-384': 'ES384' };

// The DPoP key pair of a file holding a private EC JWK (the Go test makes it and knows its
// thumbprint): a non-extractable private key, and the public one extractable, as openid-client
// needs it for the proof's jwk.
async function loadDPoPKey(file) {
  let jwk;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--dpop-key: ${err.message}`);
  }
  const alg = jwk?.kty === 'EC' ? EC_ALGS[jwk.crv] : undefined;
  if (!alg || typeof jwk.d !== 'string') throw new UsageError('--dpop-key must hold a private EC P-256 or P-384 JWK');
  const params = { name: 'ECDSA', namedCurve: jwk.crv };
  const { kty, crv, x, y } = jwk;
  return {
    alg,
    privateKey: await webcrypto.subtle.importKey('jwk', { kty, crv, x, y, d: jwk.d }, params, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('jwk', { kty, crv, x, y }, params, true, ['verify']),
  };
}

// A fetch that records the DPoP header of every request it is given, and sends them on.
function recording(fetchImpl, proofs) {
  return (url, options) => {
    const proof = new Headers(options?.headers).get('dpop');
    if (proof) proofs.push(proof);
    return fetchImpl(url, options);
  };
}

// libraryProof is the proof openid-client attaches to a protected-resource request for
// (htm, htu, accessToken), taken from the request and never sent.
async function libraryProof(keyPair, htm, htu, accessToken) {
  const proofs = [];
  const config = new client.Configuration({ issuer: htu.origin }, 'certbind-interop', {}, client.None());
  config[client.customFetch] = recording(async () => new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } }), proofs);
  client.allowInsecureRequests(config);
  await client.fetchProtectedResource(config, accessToken, htu, htm, undefined, undefined, { DPoP: client.getDPoPHandle(config, keyPair) });
  if (proofs.length !== 1) throw new Error(`openid-client made ${proofs.length} proofs`);
  return proofs[0];
}

// joseProof is a proof openid-client would not make: without ath (RFC 9449 section 4.2
// requires it with an access token), signed with jose.
async function joseProof(keyPair, htm, htu) {
  return new SignJWT({ jti: randomUUID(), htm, htu: `${htu.origin}${htu.pathname}` })
    .setProtectedHeader({ alg: keyPair.alg, typ: 'dpop+jwt', jwk: await exportJWK(keyPair.publicKey) })
    .setIssuedAt()
    .sign(keyPair.privateKey);
}

function errorText(err) {
  const parts = [err?.message ?? String(err)];
  for (let c = err?.cause, depth = 0; c && depth < 4; c = c.cause, depth++) {
    if (c instanceof Error || typeof c?.message === 'string') {
      parts.push(c.code ? `${c.code}: ${c.message}` : c.message);
    } else {
      break;
    }
  }
  return parts.join(': ');
}

function isResponse(v) {
  return v != null && typeof v === 'object' && typeof v.status === 'number' && typeof v.headers?.get === 'function';
}

async function readBody(response) {
  if (!response || response.bodyUsed) return undefined;
  try {
    return await response.text();
  } catch {
    return undefined;
  }
}

// Digs the HTTP status, the OAuth error and certbind's reason header out of whatever
// openid-client threw.
async function failure(err) {
  let response;
  let error;
  let description;

  if (err instanceof client.ResponseBodyError) {
    ({ response } = err);
    error = err.error;
    description = err.error_description;
  } else if (err instanceof client.WWWAuthenticateChallengeError) {
    ({ response } = err);
    const params = err.cause?.find((c) => c.parameters?.error)?.parameters ?? err.cause?.[0]?.parameters ?? {};
    error = params.error;
    description = params.error_description;
  } else if (isResponse(err?.cause)) {
    response = err.cause; // openid-client ClientError: unexpected status or content type
  }

  if (response && error === undefined) {
    const text = await readBody(response);
    try {
      const body = JSON.parse(text);
      if (typeof body?.error === 'string') {
        error = body.error;
        description = body.error_description;
      }
    } catch { /* not JSON */ }
    if (error === undefined) {
      error = 'unexpected_response';
      description = `${errorText(err)}${text ? `: ${text.slice(0, 200)}` : ''}`;
    }
  }

  if (!response) {
    return {
      ok: false,
      status: 0,
      error: err?.code === 'OAUTH_HTTP_REQUEST_FORBIDDEN' ? 'insecure_request' : 'request_failed',
      error_description: errorText(err),
      reason: '',
    };
  }
  return {
    ok: false,
    status: response.status,
    error: error ?? '',
    error_description: description ?? '',
    reason: response.headers.get(REASON_HEADER) ?? '',
  };
}

async function token(opts, agent) {
  need(opts, 'issuer', 'token-endpoint', 'client-id', 'auth');
  const auth = clientAuth(opts.auth, opts);
  if (opts.auth.includes('tls_client_auth') && !opts.cert) throw new UsageError(`--auth ${opts.auth} needs --cert and --key`);
  parseURL(opts.issuer, 'issuer');
  parseURL(opts['token-endpoint'], 'token-endpoint');

  const config = new client.Configuration(
    { issuer: opts.issuer, token_endpoint: opts['token-endpoint'] },
    opts['client-id'],
    {},
    auth,
  );
  config[client.customFetch] = fetchVia(agent);
  if (opts['allow-http']) client.allowInsecureRequests(config);

  const parameters = {};
  if (opts.scope !== undefined) parameters.scope = opts.scope;
  if (opts.resource !== undefined) parameters.resource = opts.resource;
  const options = {};
  if (opts['dpop-key']) options.DPoP = client.getDPoPHandle(config, await loadDPoPKey(opts['dpop-key']));

  try {
    const res = await client.clientCredentialsGrant(config, parameters, options);
    return {
      ok: true,
      access_token: res.access_token,
      token_type: res.token_type,
      expires_in: res.expires_in,
    };
  } catch (err) {
    return failure(err);
  }
}

async function discover(opts, agent) {
  need(opts, 'issuer', 'client-id');
  const issuer = parseURL(opts.issuer, 'issuer');
  const options = { [client.customFetch]: fetchVia(agent) };
  if (opts['allow-http']) options.execute = [client.allowInsecureRequests];
  try {
    const config = await client.discovery(issuer, opts['client-id'], undefined, client.TlsClientAuth(), options);
    const md = config.serverMetadata();
    return {
      ok: true,
      issuer: md.issuer,
      token_endpoint: md.token_endpoint,
      jwks_uri: md.jwks_uri,
      mtls: md.tls_client_certificate_bound_access_tokens === true,
    };
  } catch (err) {
    return failure(err);
  }
}

async function call(opts, agent) {
  need(opts, 'url', 'token');
  const url = parseURL(opts.url, 'url');
  const issuer = opts.issuer ?? url.origin;
  const config = new client.Configuration({ issuer }, opts['client-id'] ?? 'certbind-interop', {}, client.None());
  const proofs = [];
  config[client.customFetch] = recording(fetchVia(agent), proofs);
  if (opts['allow-http']) client.allowInsecureRequests(config);
  const options = {};
  if (opts['dpop-key']) options.DPoP = client.getDPoPHandle(config, await loadDPoPKey(opts['dpop-key']));

  let response;
  try {
    response = await client.fetchProtectedResource(config, opts.token, url, 'GET', undefined, undefined, options);
  } catch (err) {
    // openid-client throws on a WWW-Authenticate challenge (a 401, typically); the answer is
    // still the resource server's, so report it.
    if (err instanceof client.WWWAuthenticateChallengeError || isResponse(err?.response)) {
      ({ response } = err);
    } else {
      return failure(err);
    }
  }
  return {
    ok: true,
    status: response.status,
    www_authenticate: response.headers.get('www-authenticate') ?? '',
    reason: response.headers.get(REASON_HEADER) ?? '',
    body: (await readBody(response)) ?? '',
    dpop: proofs.at(-1) ?? '',
  };
}

// send makes one request by hand (undici, HTTP/1.1): Authorization with --scheme and --token,
// and DPoP with --dpop as given, or a proof made with --dpop-key for --htm, --htu and the
// token's (or --ath-token's) hash, or without ath (--no-ath). --host sends another Host: the
// authority a load balancer in front of several proxies would pass on.
async function send(opts, agent) {
  need(opts, 'url');
  const url = parseURL(opts.url, 'url');
  const method = opts.method ?? 'GET';
  const headers = { 'user-agent': 'certbind-interop' };
  if (opts.host) headers.host = opts.host;
  if (opts.scheme !== undefined || opts.token !== undefined) {
    need(opts, 'scheme', 'token');
    headers.authorization = `${opts.scheme} ${opts.token}`;
  }
  if (opts.dpop !== undefined && opts['dpop-key'] !== undefined) throw new UsageError('--dpop and --dpop-key exclude each other');
  if (opts.dpop !== undefined) headers.dpop = opts.dpop;
  if (opts['dpop-key'] !== undefined) {
    const keyPair = await loadDPoPKey(opts['dpop-key']);
    const htm = opts.htm ?? method;
    const htu = opts.htu !== undefined ? parseURL(opts.htu, 'htu') : url;
    if (opts['no-ath']) {
      headers.dpop = await joseProof(keyPair, htm, htu);
    } else {
      headers.dpop = await libraryProof(keyPair, htm, htu, opts['ath-token'] ?? opts.token);
    }
  }
  let res;
  try {
    res = await agent.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method, headers });
  } catch (err) {
    return failure(err);
  }
  const header = (name) => {
    const v = res.headers[name];
    return Array.isArray(v) ? v.join(', ') : (v ?? '');
  };
  return {
    ok: true,
    status: res.statusCode,
    www_authenticate: header('www-authenticate'),
    reason: header(REASON_HEADER),
    body: await res.body.text(),
    dpop: headers.dpop ?? '',
  };
}

// batch runs token, call and send commands from stdin, a JSON array of objects holding
// "command" and the flags' values by flag name ("dpop-key": "…", "no-ath": true), in order and
// over one connection pool, and answers {"ok":true,"results":[…]}, each result as its command
// alone would print it. A Node process per request would make the suite's run time its
// start-up time.
async function batch(opts, agent) {
  let steps;
  try {
    steps = JSON.parse(readFileSync(0, 'utf8'));
  } catch (err) {
    throw new UsageError(`batch: stdin: ${err.message}`);
  }
  if (!Array.isArray(steps)) throw new UsageError('batch: stdin must be a JSON array');
  const results = [];
  for (const [i, step] of steps.entries()) {
    const { command, ...flags } = step ?? {};
    const run = { token, call, send }[command];
    if (!run) throw new UsageError(`batch: step ${i}: command must be token, call or send`);
    for (const [name, value] of Object.entries(flags)) {
      // The connection (certificate, roots) is the batch's, from the command line.
      if (!OPTIONS[name] || ['cert', 'key', 'ca'].includes(name)) throw new UsageError(`batch: step ${i}: unknown flag --${name}`);
      if (typeof value !== OPTIONS[name].type) throw new UsageError(`batch: step ${i}: --${name} must be a ${OPTIONS[name].type}`);
    }
    results.push(await run({ ...opts, ...flags }, agent));
  }
  return { ok: true, results };
}

async function main() {
  let command;
  let opts;
  let agent;
  try {
    ({ command, opts } = parse(process.argv.slice(2)));
    const run = { token, discover, call, send, batch }[command];
    if (!run) throw new UsageError('command must be token, discover, call, send or batch');
    agent = makeAgent(opts);
    emit(await run(opts, agent));
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err?.code?.startsWith?.('ERR_PARSE_ARGS') || err?.code === 'ENOENT') {
      process.stderr.write(`client.mjs: ${err.message}\n`);
      emit({ ok: false, status: 0, error: 'usage', error_description: err.message, reason: '' });
      return 2;
    }
    process.stderr.write(`client.mjs: ${err?.stack ?? err}\n`);
    emit({ ok: false, status: 0, error: 'crash', error_description: errorText(err), reason: '' });
    return 1;
  } finally {
    await agent?.destroy().catch(() => {});
  }
}

process.exitCode = await main();

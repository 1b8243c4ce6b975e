// A real OAuth 2.0 client (openid-client, unmodified library behaviour) for certbind's
// interoperability tests. Mutual TLS goes through an undici Agent handed to openid-client as
// its customFetch. Every run prints exactly one JSON line on stdout; see README.md.
//
//   node client.mjs token    --issuer ISS --token-endpoint URL --client-id ID
//                            --auth tls_client_auth|self_signed_tls_client_auth|none
//                            [--cert PEM --key PEM] [--ca PEM] [--resource R] [--scope S]
//   node client.mjs discover --issuer ISS --client-id ID [--cert PEM --key PEM] [--ca PEM]
//   node client.mjs call     --url URL --token AT [--cert PEM --key PEM] [--ca PEM] [--issuer ISS]
//
// --allow-http lets openid-client talk plain HTTP (it refuses by default).
// Exit status: 0 whenever a JSON result was printed (OAuth and HTTP errors included), 2 for
// usage errors, 1 for crashes.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';

const REASON_HEADER = 'x-certbind-reason';

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

class UsageError extends Error {}

function parse(argv) {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: false,
    options: {
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
      'allow-http': { type: 'boolean', default: false },
    },
  });
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

function clientAuth(method) {
  switch (method) {
    // Both mutual-TLS methods send only client_id in the form body; the certificate is in TLS.
    case 'tls_client_auth':
    case 'self_signed_tls_client_auth':
      return client.TlsClientAuth();
    case 'none':
      return client.None();
    default:
      throw new UsageError('--auth must be tls_client_auth, self_signed_tls_client_auth or none');
  }
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
  const auth = clientAuth(opts.auth);
  if (opts.auth !== 'none' && !opts.cert) throw new UsageError(`--auth ${opts.auth} needs --cert and --key`);
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

  try {
    const res = await client.clientCredentialsGrant(config, parameters);
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
  config[client.customFetch] = fetchVia(agent);
  if (opts['allow-http']) client.allowInsecureRequests(config);

  let response;
  try {
    response = await client.fetchProtectedResource(config, opts.token, url, 'GET');
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
  };
}

async function main() {
  let command;
  let opts;
  let agent;
  try {
    ({ command, opts } = parse(process.argv.slice(2)));
    const run = { token, discover, call }[command];
    if (!run) throw new UsageError('command must be token, discover or call');
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

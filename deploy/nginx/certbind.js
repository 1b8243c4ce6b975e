// certbind's token endpoint for nginx (njs, Debian's libnginx-mod-http-js).
//
// RFC 8705 clients send their client_id in the form body of the token request (RFC 6749
// section 2.3.1, RFC 8705 section 2), and auth_request never forwards a body: it gives its
// subrequest an empty one. So at the token endpoint nginx runs this handler instead:
//
//  1. nginx reads the body (js_content reads it before the handler runs; the location bounds it
//     with client_max_body_size and keeps it in memory);
//  2. the handler asks certbind with that body, through the internal location /_certbind_form,
//     which sets the same headers as /_certbind;
//  3. on certbind's 2xx it copies certbind's upstream headers into the variables that
//     certbind-upstream-headers.conf sends, and redirects to @certbind_token, which proxies the
//     request, body unchanged, to the authorization server;
//  4. otherwise it answers with certbind's denial: its status (the one certbind meant, not the
//     auth_request-compatible 403), its OAuth error body and headers. Anything that is not an
//     answer of certbind (certbind unreachable, a broken reply, an exception) is a 500, as
//     auth_request fails, and nothing reaches the authorization server.
//
// certbind parses the form itself (one parser, the same bytes the authorization server gets),
// and denies a client_id that differs between body, query and Basic credentials.

// certbind's allow headers and the variables certbind-upstream-headers.conf sends them from
// (the same pairs as the auth_request_set lines of certbind-locations.conf).
var UPSTREAM = [
    ['cb_client_id', 'X-Certbind-Client-Id'],
    ['cb_thumbprint', 'X-Certbind-Cert-Thumbprint'],
    ['cb_client_cert', 'Client-Cert'],
    ['cb_subject', 'X-Certbind-Subject'],
    ['cb_scope', 'X-Certbind-Scope'],
];

// The headers of certbind's denial that reach the client.
var DENIAL = ['WWW-Authenticate', 'Cache-Control', 'Content-Type', 'Retry-After', 'X-Certbind-Reason'];

function fail(r, why) {
    r.error('certbind token endpoint: ' + why);
    r.return(500);
}

function token_endpoint(r) {
    var body;
    try {
        body = r.requestText;
    } catch (e) {
        // A body nginx wrote to a file: the location's buffer settings were changed.
        fail(r, 'request body not in memory: ' + e);
        return;
    }
    r.subrequest('/_certbind_form', { method: 'POST', body: body === undefined ? '' : body })
        .then(function (reply) { decide(r, reply); })
        .catch(function (e) { fail(r, 'subrequest: ' + e); });
}

function decide(r, reply) {
    var h = reply.headersOut;
    if (reply.status >= 200 && reply.status < 300) {
        for (var i = 0; i < UPSTREAM.length; i++) {
            r.variables[UPSTREAM[i][0]] = h[UPSTREAM[i][1]] || '';
        }
        r.internalRedirect('@certbind_token');
        return;
    }
    if (reply.status !== 401 && reply.status !== 403) {
        fail(r, 'certbind answered ' + reply.status);
        return;
    }
    // With http_authz.auth_request_statuses certbind answers 403 for every status nginx's
    // auth_request cannot pass and names the real one in X-Certbind-Status.
    var status = reply.status;
    var meant = Number(h['X-Certbind-Status']);
    if (meant >= 400 && meant <= 599) {
        status = meant;
    }
    for (var j = 0; j < DENIAL.length; j++) {
        if (h[DENIAL[j]]) {
            r.headersOut[DENIAL[j]] = h[DENIAL[j]];
        }
    }
    r.return(status, reply.responseText || '');
}

export default { token_endpoint };

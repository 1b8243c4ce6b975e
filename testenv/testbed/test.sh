#!/bin/sh
# Test-bed checks through Envoy: every allow and every deny, with curl and the test PKI.
# Runs in the compose `client` service (`make testbed-test`); needs ENVOY, ENVOY_SELF_SIGNED, PKI.
set -u
ENVOY=${ENVOY:-https://localhost:8443}
ENVOY_SELF_SIGNED=${ENVOY_SELF_SIGNED:-https://localhost:8444}
PKI=${PKI:-./pki}
fail=0
pass=0

# call NAME CERT URL [curl args...]: prints "STATUS" (000 when TLS refused the connection).
call() {
	name=$1 url=$2
	shift 2
	curl -sS -o /tmp/body -w '%{http_code}' --cacert "$PKI/ca.pem" \
		--cert "$PKI/$name.pem" --key "$PKI/$name-key.pem" "$url" "$@" 2>/dev/null || true
}

expect() { # expect STEP WANT GOT [BODY-SUBSTRING]
	if [ "$2" = "$3" ] && { [ -z "${4:-}" ] || grep -q -- "$4" /tmp/body; }; then
		printf 'ok    %-58s %s\n' "$1" "$3"
		pass=$((pass + 1))
	else
		printf 'FAIL  %-58s want %s got %s %s\n' "$1" "$2" "$3" "$(head -c 200 /tmp/body 2>/dev/null)"
		fail=$((fail + 1))
	fi
}

token() { # token NAME CLIENT_ID [BASE]: a bound access token, or nothing
	curl -sS --cacert "$PKI/ca.pem" --cert "$PKI/$1.pem" --key "$PKI/$1-key.pem" \
		-d grant_type=client_credentials -d client_id="$2" -d scope="read" "${3:-$ENVOY}/oauth2/token" 2>/dev/null |
		sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

# Wait for Envoy and its upstreams.
i=0
until [ "$(call billing "$ENVOY/healthz")" = 200 ] || [ $i -ge 60 ]; do sleep 1; i=$((i + 1)); done

expect "health route, no authorization" 200 "$(call billing "$ENVOY/healthz")"

# client_auth at the token endpoint (RFC 8705 section 2)
expect "tls_client_auth by subject DN: token issued" 200 "$(call billing "$ENVOY/oauth2/token" -d grant_type=client_credentials -d client_id=billing)" access_token
expect "tls_client_auth by URI SAN: token issued" 200 "$(call reports "$ENVOY/oauth2/token" -d grant_type=client_credentials -d client_id=reports)" access_token
expect "another client's client_id: invalid_client" 401 "$(call reports "$ENVOY/oauth2/token" -d grant_type=client_credentials -d client_id=billing)" invalid_client
expect "unknown client_id: invalid_client" 401 "$(call billing "$ENVOY/oauth2/token" -d grant_type=client_credentials -d client_id=nobody)" invalid_client
expect "conflicting client_id: invalid_request" 400 "$(call billing "$ENVOY/oauth2/token?client_id=reports" -d client_id=billing)" invalid_request
forged=$(printf 'Hash=%s' "0000000000000000000000000000000000000000000000000000000000000000")
expect "forged x-forwarded-client-cert is replaced" 401 "$(call reports "$ENVOY/oauth2/token" -H "x-forwarded-client-cert: $forged" -d client_id=billing)" invalid_client
expect "expired certificate: refused at TLS" 000 "$(call expired "$ENVOY/oauth2/token" -d client_id=billing)"
expect "untrusted CA: refused at TLS" 000 "$(call untrusted "$ENVOY/oauth2/token" -d client_id=billing)"
expect "self_signed_tls_client_auth: token issued" 200 "$(call partner "$ENVOY_SELF_SIGNED/oauth2/token" -d grant_type=client_credentials -d client_id=partner)" access_token
expect "self-signed certificate for a PKI client" 401 "$(call partner "$ENVOY_SELF_SIGNED/oauth2/token" -d client_id=billing)" invalid_client

# bound_token at the API (RFC 8705 section 3)
tok=$(token billing billing)
expect "bound token with its certificate" 200 "$(call billing "$ENVOY/api/things" -H "authorization: Bearer $tok")" x-certbind-subject
expect "bound token replayed with another certificate" 401 "$(call reports "$ENVOY/api/things" -H "authorization: Bearer $tok")" invalid_token
expect "no token: bare Bearer challenge" 401 "$(call billing "$ENVOY/api/things")"
expect "tampered token" 401 "$(call billing "$ENVOY/api/things" -H "authorization: Bearer ${tok}x")" invalid_token
expect "missing scope: insufficient_scope" 403 "$(call billing "$ENVOY/api/admin/x" -H "authorization: Bearer $tok")" insufficient_scope
expect "missing scope on the bare segment path" 403 "$(call billing "$ENVOY/api/admin?x=1" -H "authorization: Bearer $tok")" insufficient_scope
expect "another segment sharing the prefix is not admin" 200 "$(call billing "$ENVOY/api/administrator" -H "authorization: Bearer $tok")" x-certbind-subject
expect "client-sent x-certbind-client-id never reaches the API" 200 "$(call billing "$ENVOY/api/things" -H "authorization: Bearer $tok" -H "x-certbind-client-id: admin")" '"x-certbind-client-id":"billing"'

# identity (service to service)
expect "identity: registered by DNS SAN" 200 "$(call inventory "$ENVOY/internal/stock")" '"x-certbind-client-id":"inventory"'
expect "identity: catch-all route is checked too" 200 "$(call reports "$ENVOY/anything")" '"x-certbind-client-id":"reports"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

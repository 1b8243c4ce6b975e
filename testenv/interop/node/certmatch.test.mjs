// Unit tests for certmatch.mjs: node --test (npm test). The fixture is a public certificate
// only (its key was thrown away): subject C=SE, O="Example, Corp", OU=Pay + UID=u1 (one
// multi-valued RDN), CN="multi name"; SANs DNS:Inventory.Example.org,
// URI:spiffe://example.org/x, IP:192.0.2.10, IP:2001:db8::1, email:Ops@Example.org.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';

import { certificateSubjectMatches, parseCertificate, parseDN } from './certmatch.mjs';

const FIXTURE = new X509Certificate(`
-----BEGIN CERTIFICATE-----
MIICbzCCAhagAwIBAgIUOafHx/QcULZ3scD5tHcK3lM8eIgwCgYIKoZIzj0EAwIw
WjELMAkGA1UEBhMCU0UxFjAUBgNVBAoMDUV4YW1wbGUsIENvcnAxHjAKBgNVBAsM
A1BheTAQBgoJkiaJk/IsZAEBDAJ1MTETMBEGA1UEAwwKbXVsdGkgbmFtZTAgFw0y
NjEyMDIxNTU5NDJaGA8yMTI2MTEwODE1NTk0MlowWjELMAkGA1UEBhMCU0UxFjAU
BgNVBAoMDUV4YW1wbGUsIENvcnAxHjAKBgNVBAsMA1BheTAQBgoJkiaJk/IsZAEB
DAJ1MTETMBEGA1UEAwwKbXVsdGkgbmFtZTBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABEB32NDyOKbGF5Qiykn/ALX4rAX0v8bvcmmIS3k6T4mn5Ntnu0AiOaKvapBt
SNdlnl0iXm4eZvuaK5q8lMuzRLGjgbcwgbQwHQYDVR0OBBYEFO3H+d1LGhsrXYKA
0+dEYlK68KImMB8GA1UdIwQYMBaAFO3H+d1LGhsrXYKA0+dEYlK68KImMA8GA1Ud
EwEB/wQFMAMBAf8wYQYDVR0RBFowWIIVSW52ZW50b3J5LkV4YW1wbGUub3JnhhZz
cGlmZmU6Ly9leGFtcGxlLm9yZy94hwTAAAIKhxAgAQ24AAAAAAAAAAAAAAABgQ9P
cHNARXhhbXBsZS5vcmcwCgYIKoZIzj0EAwIDRwAwRAIgHg7dWHZIbOucbDLA0WMI
OHdUQC0KMRwKAP7S/vhv0KUCIGgXS0Nbb7b7BsdGBBCLliu2NGQ/bLNlkY6D2ZYq
7KjJ
-----END CERTIFICATE-----
`);

const dn = (s) => certificateSubjectMatches(FIXTURE, 'tls_client_auth_subject_dn', s);

test('reads the subject in certificate order', () => {
  const { subject } = parseCertificate(FIXTURE);
  assert.deepEqual(
    subject.map((rdn) => rdn.map(({ oid, value }) => `${oid}=${value}`)),
    [['2.5.4.6=SE'], ['2.5.4.10=Example, Corp'], ['2.5.4.11=Pay', '0.9.2342.19200300.100.1.1=u1'], ['2.5.4.3=multi name']],
  );
});

test('subject DN: RFC 4514 string, most specific RDN first', () => {
  assert.equal(dn('CN=multi name,OU=Pay+UID=u1,O=Example\\, Corp,C=SE'), true);
  assert.equal(dn('CN=multi name,UID=u1+OU=Pay,O=Example\\2C Corp,C=SE'), true, 'AVA order inside an RDN, hex escape');
  assert.equal(dn('cn=MULTI  NAME , ou=pay+uid=U1, o=example\\, corp, c=se'), true, 'case and insignificant spaces');
  assert.equal(dn('CN=multi name,OU=Pay+UID=u1,O=Example\\, Corp,2.5.4.6=#13025345'), true, 'numeric OID, #hex DER value');
  assert.equal(dn('C=SE,O=Example\\, Corp,OU=Pay+UID=u1,CN=multi name'), false, 'reversed order');
  assert.equal(dn('CN=multi name,OU=Pay,O=Example\\, Corp,C=SE'), false, 'missing AVA');
  assert.equal(dn('CN=multi name,OU=Pay+UID=u1,O=Example\\, Corp'), false, 'missing RDN');
  assert.equal(dn('CN=multi name,OU=Pay+UID=u1,O=Example\\, Corp,2.5.4.6=#0c025345'), false, 'other string type in #hex');
  assert.equal(dn('CN=multi,OU=Pay+UID=u1,O=Example\\, Corp,C=SE'), false);
});

test('parseDN', () => {
  assert.deepEqual(parseDN('CN=a\\,b\\+c,DC=ex\\c3\\a4mple'), [
    [{ oid: '0.9.2342.19200300.100.1.25', value: 'exämple' }],
    [{ oid: '2.5.4.3', value: 'a,b+c' }],
  ]);
  assert.deepEqual(parseDN('CN=\\ x\\ '), [[{ oid: '2.5.4.3', value: ' x ' }]]);
  assert.throws(() => parseDN('CN'));
  assert.throws(() => parseDN('XX=1'));
  assert.throws(() => parseDN(''));
});

test('SANs', () => {
  const m = (p, v) => certificateSubjectMatches(FIXTURE, p, v);
  assert.equal(m('tls_client_auth_san_dns', 'inventory.example.org'), true);
  assert.equal(m('tls_client_auth_san_dns', 'example.org'), false);
  assert.equal(m('tls_client_auth_san_uri', 'spiffe://example.org/x'), true);
  assert.equal(m('tls_client_auth_san_uri', 'spiffe://example.org/X'), false);
  assert.equal(m('tls_client_auth_san_ip', '192.0.2.10'), true);
  assert.equal(m('tls_client_auth_san_ip', '2001:DB8:0:0:0:0:0:1'), true);
  assert.equal(m('tls_client_auth_san_ip', '192.0.2.1'), false);
  assert.equal(m('tls_client_auth_san_email', 'ops@example.org'), true);
  assert.equal(m('tls_client_auth_san_email', 'dev@example.org'), false);
  assert.equal(m('tls_client_auth_san_frob', 'x'), false);
});

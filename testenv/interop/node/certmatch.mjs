// Certificate subject matching for oidc-provider's features.mTLS.certificateSubjectMatches.
//
// oidc-provider 9 leaves the comparison of a registered tls_client_auth_* value with the
// presented certificate to the deployment. This module reads the subject and the subject
// alternative names straight from the certificate's DER (no string round trip through
// OpenSSL's printers) and compares them:
//
//   tls_client_auth_subject_dn  RFC 4514 string (most specific RDN first, "\" escapes, "+"
//                               joins a multi-valued RDN, "#hex" gives a DER value). The RDN
//                               sequence must match in order; attribute types by OID;
//                               string values as a simplified caseIgnoreMatch (NFKC, case
//                               folded, surrounding white space dropped, inner runs made one
//                               space); "#hex" values byte for byte against the DER value.
//   tls_client_auth_san_dns     dNSName, ASCII case-insensitive, exact (no wildcards)
//   tls_client_auth_san_uri     uniformResourceIdentifier, exact
//   tls_client_auth_san_ip      iPAddress, compared as addresses (IPv6 forms normalised)
//   tls_client_auth_san_email   rfc822Name, case-insensitive
import { X509Certificate } from 'node:crypto';

// ---- DER ------------------------------------------------------------------------------------

function readTLV(buf, off) {
  if (off + 2 > buf.length) throw new Error('DER: truncated');
  const first = buf[off];
  if ((first & 0x1f) === 0x1f) throw new Error('DER: high tag numbers unsupported');
  let len = buf[off + 1];
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('DER: bad length');
    if (off + 2 + n > buf.length) throw new Error('DER: truncated');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i];
    hdr += n;
  }
  const start = off + hdr;
  const end = start + len;
  if (end > buf.length) throw new Error('DER: truncated');
  return {
    cls: first >> 6, constructed: (first & 0x20) !== 0, tag: first & 0x1f,
    byte: first, offset: off, start, end,
  };
}

function children(buf, tlv) {
  const out = [];
  for (let off = tlv.start; off < tlv.end;) {
    const c = readTLV(buf, off);
    out.push(c);
    off = c.end;
  }
  return out;
}

function decodeOID(bytes) {
  const arcs = [];
  let v = 0n;
  for (const b of bytes) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      if (arcs.length === 0) {
        const first = v < 80n ? v / 40n : 2n;
        arcs.push(first, v - first * 40n);
      } else {
        arcs.push(v);
      }
      v = 0n;
    }
  }
  return arcs.join('.');
}

function decodeString(tag, bytes) {
  switch (tag) {
    case 12: return bytes.toString('utf8'); // UTF8String
    case 18: case 19: case 22: case 26: return bytes.toString('latin1'); // Numeric, Printable, IA5, Visible
    case 20: return bytes.toString('latin1'); // TeletexString, treated as Latin-1
    case 30: { // BMPString, UTF-16BE
      const le = Buffer.from(bytes);
      le.swap16();
      return le.toString('utf16le');
    }
    case 28: { // UniversalString, UTF-32BE
      let s = '';
      for (let i = 0; i + 4 <= bytes.length; i += 4) s += String.fromCodePoint(bytes.readUInt32BE(i));
      return s;
    }
    default: return undefined;
  }
}

function toBuffer(cert) {
  if (cert instanceof X509Certificate) return cert.raw;
  if (Buffer.isBuffer(cert)) return cert;
  return new X509Certificate(cert).raw;
}

// Returns { subject: [[{ oid, value?, der }]], san: { dns: [], uri: [], ip: [], email: [] } }.
export function parseCertificate(cert) {
  const der = toBuffer(cert);
  const certSeq = readTLV(der, 0);
  const [tbs] = children(der, certSeq);
  const fields = children(der, tbs);
  let i = 0;
  if (fields[0].cls === 2 && fields[0].tag === 0) i++; // [0] version
  const subjectTLV = fields[i + 4]; // serial, signature, issuer, validity, subject
  const subject = children(der, subjectTLV).map((rdn) => children(der, rdn).map((ava) => {
    const [type, value] = children(der, ava);
    return {
      oid: decodeOID(der.subarray(type.start, type.end)),
      value: value.cls === 0 ? decodeString(value.tag, der.subarray(value.start, value.end)) : undefined,
      der: der.subarray(value.offset, value.end),
    };
  }));

  const san = { dns: [], uri: [], ip: [], email: [] };
  const extsWrapper = fields.slice(i + 6).find((f) => f.cls === 2 && f.tag === 3);
  if (extsWrapper) {
    const [exts] = children(der, extsWrapper);
    for (const ext of children(der, exts)) {
      const parts = children(der, ext);
      if (decodeOID(der.subarray(parts[0].start, parts[0].end)) !== '2.5.29.17') continue;
      const octets = parts[parts.length - 1];
      const names = readTLV(der, octets.start);
      for (const gn of children(der, names)) {
        if (gn.cls !== 2) continue;
        const bytes = der.subarray(gn.start, gn.end);
        switch (gn.tag) {
          case 1: san.email.push(bytes.toString('latin1')); break;
          case 2: san.dns.push(bytes.toString('latin1')); break;
          case 6: san.uri.push(bytes.toString('latin1')); break;
          case 7: san.ip.push(Buffer.from(bytes)); break;
          default: break;
        }
      }
    }
  }
  return { subject, san };
}

// ---- RFC 4514 -------------------------------------------------------------------------------

const SHORT_NAMES = {
  CN: '2.5.4.3',
  SN: '2.5.4.4',
  SURNAME: '2.5.4.4',
  SERIALNUMBER: '2.5.4.5',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  STREET: '2.5.4.9',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  T: '2.5.4.12',
  TITLE: '2.5.4.12',
  POSTALCODE: '2.5.4.17',
  GN: '2.5.4.42',
  GIVENNAME: '2.5.4.42',
  ORGANIZATIONIDENTIFIER: '2.5.4.97',
  DC: '0.9.2342.19200300.100.1.25',
  UID: '0.9.2342.19200300.100.1.1',
  EMAILADDRESS: '1.2.840.113549.1.9.1',
  E: '1.2.840.113549.1.9.1',
};

const HEX = /^[0-9a-fA-F]{2}$/;

// parseDN parses an RFC 4514 string into RDNs in certificate (least specific first) order:
// [[{ oid, value } | { oid, der }]].
export function parseDN(text) {
  if (typeof text !== 'string' || text.trim() === '') throw new Error('empty distinguished name');
  const rdns = [];
  let rdn = [];
  let pos = 0;
  const n = text.length;
  const skipSpaces = () => { while (pos < n && text[pos] === ' ') pos++; };

  for (;;) {
    skipSpaces();
    const typeStart = pos;
    while (pos < n && text[pos] !== '=') pos++;
    if (pos >= n) throw new Error(`attribute without "=" in ${JSON.stringify(text)}`);
    let type = text.slice(typeStart, pos).trim();
    pos++; // '='
    if (/^oid\./i.test(type)) type = type.slice(4);
    let oid;
    if (/^[0-9]+(\.[0-9]+)+$/.test(type)) {
      oid = type;
    } else {
      oid = SHORT_NAMES[type.toUpperCase()];
      if (!oid) throw new Error(`unknown attribute type ${JSON.stringify(type)}`);
    }

    skipSpaces();
    let ava;
    if (text[pos] === '#') {
      pos++;
      const start = pos;
      while (pos < n && /[0-9a-fA-F]/.test(text[pos])) pos++;
      const hex = text.slice(start, pos);
      if (hex.length === 0 || hex.length % 2) throw new Error('bad #hex attribute value');
      ava = { oid, der: Buffer.from(hex, 'hex') };
      skipSpaces();
    } else {
      const bytes = [];
      let keep = 0; // bytes.length up to the last escaped or non-space character
      while (pos < n && text[pos] !== ',' && text[pos] !== '+') {
        const ch = text[pos];
        if (ch === '\\') {
          const pair = text.slice(pos + 1, pos + 3);
          if (HEX.test(pair)) {
            bytes.push(parseInt(pair, 16));
            pos += 3;
          } else if (pos + 1 < n) {
            bytes.push(...Buffer.from(String.fromCodePoint(text.codePointAt(pos + 1)), 'utf8'));
            pos += 1 + (text.codePointAt(pos + 1) > 0xffff ? 2 : 1);
          } else {
            throw new Error('dangling "\\" in distinguished name');
          }
          keep = bytes.length;
        } else {
          const cp = text.codePointAt(pos);
          const s = String.fromCodePoint(cp);
          bytes.push(...Buffer.from(s, 'utf8'));
          pos += s.length;
          if (ch !== ' ') keep = bytes.length;
        }
      }
      ava = { oid, value: Buffer.from(bytes.slice(0, keep)).toString('utf8') };
    }
    rdn.push(ava);

    if (pos >= n) {
      rdns.push(rdn);
      break;
    }
    if (text[pos] === '+') {
      pos++;
      continue;
    }
    if (text[pos] === ',') {
      pos++;
      rdns.push(rdn);
      rdn = [];
      continue;
    }
    throw new Error(`unexpected ${JSON.stringify(text[pos])} in distinguished name`);
  }
  return rdns.reverse();
}

function prepare(s) {
  return s.normalize('NFKC').toLowerCase().trim().replace(/\s+/g, ' ');
}

function avaMatches(want, have) {
  if (want.oid !== have.oid) return false;
  if (want.der) return Buffer.compare(want.der, have.der) === 0;
  if (have.value === undefined) return false;
  return prepare(want.value) === prepare(have.value);
}

export function subjectMatchesDN(cert, expectedDN) {
  const want = parseDN(expectedDN);
  const have = parseCertificate(cert).subject;
  if (want.length !== have.length) return false;
  return want.every((rdn, i) => {
    const other = have[i];
    if (rdn.length !== other.length) return false;
    const used = new Set();
    return rdn.every((ava) => {
      const j = other.findIndex((h, k) => !used.has(k) && avaMatches(ava, h));
      if (j < 0) return false;
      used.add(j);
      return true;
    });
  });
}

// ---- SANs -----------------------------------------------------------------------------------

function ipBytes(text) {
  const s = String(text).trim();
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const parts = s.split('.').map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return Buffer.from(parts);
  }
  if (!s.includes(':')) return undefined;
  let host;
  try {
    host = new URL(`http://[${s.replace(/^\[|\]$/g, '')}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  // host is now the canonical compressed form; expand it to 16 bytes.
  const [head, tail] = host.includes('::') ? host.split('::') : [host, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const words = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(parseInt(w, 16), i * 2));
  return out;
}

export function certificateSubjectMatches(cert, property, expected) {
  if (property === 'tls_client_auth_subject_dn') return subjectMatchesDN(cert, expected);
  const { san } = parseCertificate(cert);
  switch (property) {
    case 'tls_client_auth_san_dns':
      return san.dns.some((v) => v.toLowerCase() === String(expected).toLowerCase());
    case 'tls_client_auth_san_uri':
      return san.uri.includes(expected);
    case 'tls_client_auth_san_email':
      return san.email.some((v) => v.toLowerCase() === String(expected).toLowerCase());
    case 'tls_client_auth_san_ip': {
      const want = ipBytes(expected);
      return !!want && san.ip.some((v) => Buffer.compare(v, want) === 0);
    }
    default:
      return false;
  }
}

// The self-signed certificate `sds cert` writes, read back by node's own X.509 parser, and the --tls-cert /
// --tls-key flags: a pair that does not belong together, or a missing half, stops the start naming the flags.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { runCertCommand } from '../../server/cert-command.js';
import { ConfigError, parseServeConfig } from '../../server/config.js';
import { createSelfSignedCertificate } from '../../server/self-signed-certificate.js';

describe('createSelfSignedCertificate', () => {
  test('is a self-signed v3 server certificate for every IP address and name given', () => {
    const { certPem } = createSelfSignedCertificate({
      hosts: ['192.168.1.20', 'studio.lan', '2001:db8::7', '::ffff:10.1.2.3'],
      days: 30,
      now: new Date('2030-01-01T00:00:00Z'),
    });
    const cert = new X509Certificate(certPem);
    assert.ok(cert.verify(cert.publicKey), 'signed by its own key');
    assert.equal(cert.subject, 'CN=192.168.1.20');
    assert.equal(cert.checkIP('192.168.1.20'), '192.168.1.20');
    assert.equal(cert.checkIP('2001:db8::7'), '2001:db8::7');
    assert.equal(cert.checkHost('studio.lan'), 'studio.lan');
    assert.equal(cert.checkIP('192.168.1.21'), undefined);
    assert.equal(cert.ca, false);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extended key usage: TLS server');
    assert.equal(new Date(cert.validTo).toISOString(), '2030-01-31T00:00:00.000Z');
    assert.match(cert.subjectAltName ?? '', /IP Address:0:0:0:0:0:FFFF:A01:203/i);
  });
  test('refuses a host that is neither an address nor a DNS name', () => {
    assert.throws(() => createSelfSignedCertificate({ hosts: ['not a host'] }), /neither an IP address nor a DNS name/);
  });
});

describe('sds cert and --tls-cert/--tls-key', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sds-tls-'));
  const certFile = path.join(dir, 'sds-cert.pem');
  const keyFile = path.join(dir, 'sds-key.pem');

  test('sds cert writes a certificate and a private key only its owner can read, and says how to serve with them', () => {
    let said = '';
    assert.equal(
      runCertCommand(['--host', '192.168.1.20', '--out', dir], (t) => (said += t)),
      0,
    );
    assert.equal(new X509Certificate(readFileSync(certFile)).checkIP('192.168.1.20'), '192.168.1.20');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.match(said, /sds serve --tls-cert .*sds-cert\.pem --tls-key .*sds-key\.pem/);
    assert.throws(() => runCertCommand(['--out', dir], () => {}), /exists already; pass --force/);
  });
  test('the files serve: parsed into the config as PEM', () => {
    const config = parseServeConfig(['--tls-cert', certFile, '--tls-key', keyFile], {});
    assert.match(config.tls?.cert ?? '', /BEGIN CERTIFICATE/);
    assert.match(config.tls?.key ?? '', /BEGIN PRIVATE KEY/);
    assert.ok(parseServeConfig([], { TLS_CERT: certFile, TLS_KEY: keyFile }).tls);
    assert.equal(parseServeConfig([], {}).tls, undefined);
  });
  test('a missing half, an unreadable file or a key of another certificate stops the start naming the flags', () => {
    const refused = (argv: string[], pattern: RegExp) =>
      assert.throws(
        () => parseServeConfig(argv, {}),
        (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
      );
    refused(['--tls-cert', certFile], /^--tls-cert and --tls-key go together \(got only --tls-cert\)/);
    refused(['--tls-cert', path.join(dir, 'nope.pem'), '--tls-key', keyFile], /^--tls-cert: cannot read ".*nope\.pem" \(ENOENT\)/);
    const otherKey = path.join(dir, 'other-key.pem');
    writeFileSync(otherKey, createSelfSignedCertificate({ hosts: ['localhost'] }).keyPem);
    refused(['--tls-cert', certFile, '--tls-key', otherKey], /^--tls-cert\/--tls-key: .* are not a PEM certificate and its private key/);
  });
});

// `sds cert`: write a self-signed certificate and key for serving HTTPS on a LAN address, and say how to
// use them (README "HTTPS on a LAN"). Without --host it covers this machine's non-loopback IPv4 addresses,
// localhost and 127.0.0.1.
import { existsSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from './config-error.js';
import { createSelfSignedCertificate } from './self-signed-certificate.js';

export const CERT_HELP = `sds cert [--host <address or name>]... [--out DIR] [--days N] [--force]
  Writes DIR/sds-cert.pem and DIR/sds-key.pem (default DIR: .), a self-signed certificate valid for each --host
  (default: this machine's LAN IPv4 addresses, localhost and 127.0.0.1) for N days (default 365, at most 398).
  Then: sds serve --tls-cert DIR/sds-cert.pem --tls-key DIR/sds-key.pem
`;

export function runCertCommand(argv: string[], write: (text: string) => void = (t) => process.stdout.write(t)): number {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string', multiple: true },
      out: { type: 'string' },
      days: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    write(CERT_HELP);
    return 0;
  }
  const hosts =
    values.host
      ?.flatMap((h) => h.split(','))
      .map((h) => h.trim())
      .filter(Boolean) ?? defaultHosts();
  const days = Number(values.days ?? 365);
  if (!Number.isInteger(days) || days < 1 || days > 398)
    throw new ConfigError(`--days must be an integer from 1 to 398 (got "${values.days}")`);
  const out = path.resolve(values.out ?? '.');
  const certFile = path.join(out, 'sds-cert.pem');
  const keyFile = path.join(out, 'sds-key.pem');
  if (!values.force && (existsSync(certFile) || existsSync(keyFile))) {
    throw new ConfigError(`${certFile} or ${keyFile} exists already; pass --force to replace them`);
  }
  let made;
  try {
    made = createSelfSignedCertificate({ hosts, days });
  } catch (err) {
    throw new ConfigError(`--host: ${(err as Error).message}`);
  }
  writeFileSync(certFile, made.certPem);
  writeFileSync(keyFile, made.keyPem, { mode: 0o600 });
  const first = hosts.find((h) => h !== 'localhost' && !h.startsWith('127.')) ?? hosts[0]!;
  const shown = first.includes(':') ? `[${first}]` : first;
  write(
    `wrote ${certFile} and ${keyFile} (self-signed, valid ${days} days for ${hosts.join(', ')})\n` +
      `serve:  sds serve --tls-cert ${certFile} --tls-key ${keyFile}\n` +
      `open:   https://${shown}:8080 — the browser warns once about the self-signed certificate (README "HTTPS on a LAN")\n`,
  );
  return 0;
}

function defaultHosts(): string[] {
  const lan = Object.values(networkInterfaces())
    .flatMap((infos) => infos ?? [])
    .filter((i) => !i.internal && i.family === 'IPv4' && !i.address.startsWith('169.254.'))
    .map((i) => i.address);
  return [...new Set([...lan, 'localhost', '127.0.0.1'])];
}

// HTTPS with --tls-cert/--tls-key on the real server: the web app, the API, a WHIP offer and the WebSocket
// (wss:) all answer over TLS with the certificate `sds cert` makes, verified against it as the only trusted
// root; plain HTTP on the same port gets no answer. (tests/browser/https-lan.test.ts opens the app in Chromium.)
import assert from 'node:assert/strict';
import { request } from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import type { RunningServer } from '../../server/server.js';
import { createSelfSignedCertificate } from '../../server/self-signed-certificate.js';
import { PACKAGE_ROOT } from '../../server/config.js';
import { startTestServer } from '../support/server-harness.js';
import { makeOffer } from '../support/werift-offer.js';

const cert = createSelfSignedCertificate({ hosts: ['127.0.0.1', 'localhost'] });
let server: RunningServer;

before(async () => {
  server = await startTestServer({
    modelDir: path.join(PACKAGE_ROOT, 'tests', 'fixtures', 'sd-tiny'),
    tls: { cert: cert.certPem, key: cert.keyPem },
  });
});
after(async () => {
  await server?.close();
});

/** One HTTPS request that trusts only the test's certificate. */
function httpsRequest(
  method: string,
  url: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: cert.certPem, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the server says https:// and serves the app and the API over TLS', async () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const app = await httpsRequest('GET', `${server.url}/`);
  assert.equal(app.status, 200);
  assert.match(app.body, /<html/i);
  assert.equal((await httpsRequest('GET', `${server.url}/healthz`)).status, 200);
});

test('a WHIP offer is answered over TLS', async () => {
  const peer = await makeOffer();
  try {
    const res = await httpsRequest('POST', `${server.url}/whip`, peer.offer, { 'Content-Type': 'application/sdp' });
    assert.equal(res.status, 201, res.body);
    assert.match(res.body, /^v=0/);
    const location = new URL(String(res.headers.location), server.url);
    assert.equal((await httpsRequest('DELETE', location.toString())).status, 200);
  } finally {
    await peer.close();
  }
});

test('the WebSocket fallback upgrades over TLS (wss:)', async () => {
  const ws = new WebSocket(`${server.url.replace('https', 'wss')}/ws`, { ca: cert.certPem });
  const hello = await new Promise<{ type: string }>((resolve, reject) => {
    ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()) as { type: string }));
    ws.once('error', reject);
  });
  assert.equal(hello.type, 'hello');
  ws.close();
});

test('plain HTTP on the TLS port gets no page', async () => {
  const plain = await fetch(server.url.replace('https', 'http')).then(
    (res) => res.status,
    () => 'refused',
  );
  assert.notEqual(plain, 200);
});

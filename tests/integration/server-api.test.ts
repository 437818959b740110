// The HTTP surface of a real server (real werift, real model runtime on the tiny SD-layout fixture):
// status codes, error messages, session lifecycle and metrics.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { liveResources } from '../../stream/resource-counters.js';
import type { RunningServer } from '../../server/server.js';
import { SD_TINY_MODEL, startTestServer } from '../support/server-harness.js';
import { makeOffer } from '../support/werift-offer.js';

let server: RunningServer;

before(async () => {
  server = await startTestServer({ modelDir: SD_TINY_MODEL, maxSessions: 1 });
});
after(async () => {
  await server.close();
});

async function whip(body: string, contentType = 'application/sdp'): Promise<Response> {
  return fetch(`${server.url}/whip`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
}

test('GET /healthz answers 200 with the model name', async () => {
  const res = await fetch(`${server.url}/healthz`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { status: string; model: string };
  assert.equal(body.status, 'ok');
  assert.ok(body.model.length > 0);
});

test('GET /api/model describes the loaded model', async () => {
  const body = (await (await fetch(`${server.url}/api/model`)).json()) as { width: number; steps: number[]; conditioning: string };
  assert.ok(body.width > 0);
  assert.ok(body.steps.includes(1));
  assert.equal(body.conditioning, 'text');
});

test('a WHIP offer with the wrong content type is refused with 415', async () => {
  const res = await whip('{"sdp":"v=0"}', 'application/json');
  assert.equal(res.status, 415);
  assert.match(await res.text(), /application\/sdp/);
});

test('a malformed SDP offer is refused with 400 and a reason', async () => {
  const res = await whip('this is not sdp');
  assert.equal(res.status, 400);
  assert.match(await res.text(), /SDP/i);
});

test('an offer without a supported video codec names the supported ones', async () => {
  const peer = await makeOffer({ codecs: ['AV1'] });
  try {
    const res = await whip(peer.offer);
    assert.ok(res.status === 415 || res.status === 400, `status ${res.status}`);
    const text = await res.text();
    assert.match(text, /VP8/);
    assert.match(text, /H264/);
  } finally {
    await peer.close();
  }
});

test('unknown sessions answer 404', async () => {
  assert.equal((await fetch(`${server.url}/sessions/nope`, { method: 'DELETE' })).status, 404);
  const patch = await fetch(`${server.url}/sessions/nope/params`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/json' },
    body: '{"strength":0.5}',
  });
  assert.equal(patch.status, 404);
});

test('a session is created, takes parameters, refuses a second one when full, and frees everything on DELETE', async () => {
  const peer = await makeOffer({ codecs: ['VP8', 'H264'], audio: true });
  const second = await makeOffer();
  try {
    const res = await whip(peer.offer);
    assert.equal(res.status, 201, await res.clone().text());
    assert.equal(res.headers.get('content-type'), 'application/sdp');
    const location = res.headers.get('location');
    assert.match(location ?? '', /^\/sessions\/[A-Za-z0-9_-]{20,}$/);
    const answer = await res.text();
    assert.match(answer, /m=audio/, 'the audio m-line is accepted');
    assert.match(answer, /m=video/);

    const full = await whip(second.offer);
    assert.equal(full.status, 503);
    assert.ok(Number(full.headers.get('retry-after')) > 0);

    const bad = await fetch(`${server.url}${location}/params`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json' },
      body: '{"strength":7}',
    });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /strength must be a number from 0 to 1/);

    const good = await fetch(`${server.url}${location}/params`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json' },
      body: '{"strength":0.3,"steps":2,"seed":7}',
    });
    assert.equal(good.status, 200);
    const params = (await good.json()) as { strength: number; steps: number; seed: number };
    assert.deepEqual([params.strength, params.steps, params.seed], [0.3, 2, 7]);

    const trickle = await fetch(`${server.url}${location}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' },
      body: 'a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\nm=video 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 UDP 1 127.0.0.1 9 typ host\r\n',
    });
    assert.equal(trickle.status, 405);
    assert.match(trickle.headers.get('allow') ?? '', /DELETE/);

    assert.equal(liveResources().sessions, 1);
    const del = await fetch(`${server.url}${location}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal((await fetch(`${server.url}${location}`)).status, 404);
    assert.deepEqual(
      Object.values(liveResources()).filter((n) => n !== 0),
      [],
      JSON.stringify(liveResources()),
    );
    assert.equal(server.sessions.size, 0);
  } finally {
    await peer.close();
    await second.close();
  }
});

test('/metrics serves Prometheus text with the pipeline metrics', async () => {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  for (const name of [
    'sds_stage_duration_ms',
    'sds_frame_latency_ms',
    'sds_sessions',
    'sds_event_loop_delay_ms',
    'sds_model_queue_depth',
    'sds_model_utilization',
    'sds_frames_dropped_total',
  ]) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
});

test('OPTIONS /whip advertises application/sdp', async () => {
  const res = await fetch(`${server.url}/whip`, { method: 'OPTIONS' });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('accept-post'), 'application/sdp');
});

test('no CORS headers for origins that are not configured', async () => {
  const res = await fetch(`${server.url}/healthz`, { headers: { Origin: 'https://elsewhere.example' } });
  assert.equal(res.headers.get('access-control-allow-origin'), null);
});

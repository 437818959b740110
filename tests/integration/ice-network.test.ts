// The ICE network flags on the real server: a publisher's and a WHEP viewer's answers carry exactly the
// chosen and announced addresses, on ports inside --udp-port-range, and a client on this machine connects
// through the loopback interface it was told to gather on (tests/integration/nat.test.ts crosses a real NAT).
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createLoopbackClient, loadTestPhoto, makePanClip } from '../../bench/loopback-client.js';
import { startWhepViewer } from '../../bench/whep-viewer.js';
import type { RgbImage } from '../../frame/video-frame.js';
import { parseServeConfig } from '../../server/config.js';
import type { RunningServer } from '../../server/server.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { requireDefaultModel } from '../support/test-dependency.js';
import { until } from '../support/until.js';

const skip = requireDefaultModel();
const ANNOUNCED = '203.0.113.7';
const RANGE = [41000, 41020] as const;
let server: RunningServer;
let clip: RgbImage[];

before(async () => {
  if (skip) return;
  const flags = [
    '--announce-address',
    ANNOUNCED,
    '--ice-interfaces',
    'lo',
    '--udp-port-range',
    `${RANGE[0]}-${RANGE[1]}`,
    '--max-sessions',
    '2',
    '--max-viewers',
    '2',
  ];
  const config = parseServeConfig(flags, {});
  server = await startTestServer({
    modelDir: DEFAULT_MODEL,
    network: config.network,
    maxSessions: 2,
    maxViewers: 2,
    admissionCeiling: Number.POSITIVE_INFINITY,
  });
  clip = await makePanClip(await loadTestPhoto(path.join(DEFAULT_MODEL, 'testdata', 'heldout.png')), 320, 240, 60);
});
after(async () => {
  await server?.close();
});

/** The host candidates of an SDP: address and port of each `a=candidate` line. */
function candidates(sdp: string): Array<{ address: string; port: number; type: string }> {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)/gm)].map((m) => ({
    address: m[2]!,
    port: Number(m[3]),
    type: m[4]!,
  }));
}

function assertCandidates(sdp: string, who: string): void {
  const found = candidates(sdp);
  const addresses = [...new Set(found.map((c) => c.address))].sort();
  // `lo`'s addresses (127.0.0.1, and ::1 where loopback has IPv6) and nothing from the machine's other interfaces.
  const loopback = (networkInterfaces().lo ?? []).map((i) => i.address);
  assert.deepEqual(addresses, [...new Set([...loopback, ANNOUNCED])].sort(), `${who}: candidates ${JSON.stringify(found)}`);
  for (const c of found) {
    assert.equal(c.type, 'host');
    assert.ok(c.port >= RANGE[0] && c.port <= RANGE[1], `${who}: port ${c.port} is inside ${RANGE.join('-')}`);
  }
}

test('publisher and viewer answers carry the announced and chosen addresses on ports in the range, and media flows', { skip }, async () => {
  let restyled = 0;
  const client = await createLoopbackClient({
    whipUrl: `${server.url}/whip/cam`,
    codec: 'VP8',
    fps: 30,
    frames: clip,
    width: 320,
    height: 240,
    loop: true,
    onOutputFrame: () => restyled++,
  });
  try {
    assertCandidates(client.answerSdp, 'publisher');
    await until('restyled frames come back over loopback', () => restyled >= 5, 60_000);
    const viewer = await startWhepViewer({ whepUrl: `${server.url}/whep/cam` });
    try {
      assertCandidates(viewer.answerSdp, 'viewer');
      await until('the viewer decodes frames', () => viewer.stats().framesDecoded >= 3, 60_000);
    } finally {
      await viewer.close();
    }
  } finally {
    await client.close();
  }
});

// Third-party clients end to end: GStreamer's webrtcbin publishes the way OBS does (Opus audio m-line first,
// H.264 video, sendonly, bundle-only, non-trickle) to /whip/<name>, and headless Chromium plays the overlay
// page /overlay/<name> over WHEP. The pixels Chromium shows must be the restyled stream: the model's size,
// moving, and far from the raw colour-bar pattern. Skipped only where GStreamer's webrtcbin (or Chromium) is
// missing locally (failed where it is missing under CI=true); .ci/run installs both.
import { chromiumArgs } from '../../bench/browser-bench.js';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { PACKAGE_ROOT } from '../../server/config.js';
import { liveResources } from '../../stream/resource-counters.js';
import type { RunningServer } from '../../server/server.js';
import { DEFAULT_MODEL, startTestServer } from '../support/server-harness.js';
import { requireChromium, requireOrSkip } from '../support/test-dependency.js';

const { executablePath: CHROMIUM, skip: noChromium } = requireChromium();
const PYTHON = '/usr/bin/python3';
const PUBLISHER = path.join(PACKAGE_ROOT, 'tests', 'support', 'gst-whip-publisher.py');
const STREAM = 'obs-like';
const TOKEN = 'gst-test-token';

function gstreamerMissing(): string | false {
  const inspect = spawnSync('gst-inspect-1.0', ['webrtcbin'], { stdio: 'ignore' });
  if (inspect.error || inspect.status !== 0) return 'GStreamer webrtcbin not found (gstreamer1.0-plugins-bad, gstreamer1.0-nice)';
  for (const element of ['x264enc', 'opusenc', 'videotestsrc']) {
    if (spawnSync('gst-inspect-1.0', [element], { stdio: 'ignore' }).status !== 0) return `GStreamer element ${element} not found`;
  }
  const gi = spawnSync(
    PYTHON,
    ['-c', "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstWebRTC','1.0'); from gi.repository import Gst, GstWebRTC"],
    { stdio: 'ignore' },
  );
  if (gi.error || gi.status !== 0) return 'python3-gst-1.0 (PyGObject with GstWebRTC) not found';
  return false;
}
const gstMissing = gstreamerMissing();
const skip =
  noChromium || requireOrSkip('GStreamer webrtcbin', gstMissing && `${gstMissing}: install the packages .ci/run lists to run this test`);

// page.evaluate callbacks run in the page; this file compiles without the DOM lib.
declare const document: any;
declare const getComputedStyle: any;

/** Mean per-pixel saturation (max − min channel) of an RGB(A) buffer. */
function saturation(data: Uint8Array | Uint8ClampedArray, channels: number): number {
  let sum = 0;
  let n = 0;
  for (let i = 0; i + 2 < data.length; i += channels, n++)
    sum += Math.max(data[i]!, data[i + 1]!, data[i + 2]!) - Math.min(data[i]!, data[i + 1]!, data[i + 2]!);
  return sum / n;
}

describe('GStreamer webrtcbin publisher (like OBS) → Chromium overlay over WHEP', { skip, timeout: 120_000 }, () => {
  let server: RunningServer;
  let publisher: ChildProcess;
  let context: BrowserContext;
  let userDataDir: string;
  const publisherLog: string[] = [];

  before(async () => {
    server = await startTestServer({ modelDir: DEFAULT_MODEL, token: TOKEN });
    // Set before the publisher exists: the stream starts with it.
    const preset = await fetch(`${server.url}/streams/${STREAM}/params`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ style: 'sketch', strength: 0.8 }),
    });
    assert.equal(preset.status, 200);
    publisher = spawn(PYTHON, [PUBLISHER, '--url', `${server.url}/whip/${STREAM}`, '--token', TOKEN], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    publisher.stdout!.on('data', (d: Buffer) => publisherLog.push(...d.toString().trim().split('\n')));
    publisher.stderr!.on('data', (d: Buffer) =>
      publisherLog.push(
        ...d
          .toString()
          .trim()
          .split('\n')
          .map((l) => `stderr: ${l}`),
      ),
    );
    const deadline = Date.now() + 20_000;
    while (!publisherLog.includes('connection connected')) {
      if (Date.now() > deadline || publisher.exitCode !== null)
        throw new Error(`GStreamer publisher did not connect:\n${publisherLog.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    userDataDir = await mkdtemp(path.join(tmpdir(), 'whip-gst-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...chromiumArgs(), '--autoplay-policy=no-user-gesture-required'],
    });
  });

  after(async () => {
    await context?.close();
    if (publisher && publisher.exitCode === null) {
      publisher.kill('SIGTERM');
      await new Promise((r) => publisher.once('exit', r));
    }
    await server?.close();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  });

  test('the GStreamer offer (audio first, H.264, sendonly, bundle-only) is answered recvonly and connects', () => {
    const session = server.sessions.byStreamName(STREAM);
    assert.ok(session, 'the stream is live under its name');
    assert.equal(session.publisher.codec, 'H264');
    assert.equal(session.publisher.returnPath, undefined, 'nothing is sent back to a sendonly publisher');
    assert.equal(session.engine.currentParams.strength, 0.8, 'parameters stored for the name were applied');
    assert.ok(publisherLog.includes('answer audio recvonly'), publisherLog.join('\n'));
    assert.ok(publisherLog.includes('answer video recvonly'), publisherLog.join('\n'));
    assert.ok(
      publisherLog.indexOf('answer audio recvonly') < publisherLog.indexOf('answer video recvonly'),
      'audio stays the first m-line',
    );
  });

  test(
    'Chromium plays /overlay/<name>: restyled, moving pixels on a transparent page, with the publisher audio',
    { timeout: 60_000 },
    async () => {
      const page = await context.newPage();
      await page.goto(`${server.url}/overlay/${STREAM}?token=${TOKEN}&audio=on`);
      const { width, height } = server.restyler.info;
      const result = await page.evaluate(async () => {
        const video = document.getElementById('player');
        const start = Date.now();
        while ((video.videoWidth === 0 || (video.getVideoPlaybackQuality?.().totalVideoFrames ?? 0) < 10) && Date.now() - start < 20_000) {
          await new Promise((r) => setTimeout(r, 100));
        }
        const snap = (): number[] => {
          const canvas = document.createElement('canvas');
          canvas.width = video.videoWidth;
          canvas.height = video.videoHeight;
          const ctx = canvas.getContext('2d');
          ctx.drawImage(video, 0, 0);
          return Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data as Uint8ClampedArray);
        };
        const a = snap();
        const framesA = video.getVideoPlaybackQuality().totalVideoFrames;
        await new Promise((r) => setTimeout(r, 1500));
        const b = snap();
        const framesB = video.getVideoPlaybackQuality().totalVideoFrames;
        return {
          width: video.videoWidth,
          height: video.videoHeight,
          a,
          b,
          fps: (framesB - framesA) / 1.5,
          background: getComputedStyle(document.body).backgroundColor,
          muted: video.muted,
          audioTracks: video.srcObject?.getAudioTracks().length ?? 0,
        };
      });
      const a = Uint8Array.from(result.a);
      const b = Uint8Array.from(result.b);
      let mean = 0;
      let change = 0;
      for (let i = 0; i < a.length; i += 4) {
        mean += (a[i]! + a[i + 1]! + a[i + 2]!) / 3;
        change += (Math.abs(a[i]! - b[i]!) + Math.abs(a[i + 1]! - b[i + 1]!) + Math.abs(a[i + 2]! - b[i + 2]!)) / 3;
      }
      mean /= a.length / 4;
      change /= a.length / 4;
      // The raw input: GStreamer's SMPTE bars at the model's size (scrolling permutes columns, so the mean
      // saturation of any scrolled frame is the same).
      const rawFile = path.join(userDataDir, 'smpte.rgb');
      const raw = spawnSync('gst-launch-1.0', [
        '-q',
        'videotestsrc',
        'num-buffers=1',
        'pattern=smpte',
        '!',
        `video/x-raw,format=RGB,width=${width},height=${height}`,
        '!',
        'filesink',
        `location=${rawFile}`,
      ]);
      assert.equal(raw.status, 0, raw.stderr.toString());
      const rawSaturation = saturation(await readFile(rawFile), 3);
      const outSaturation = saturation(a, 4);
      const session = server.sessions.byStreamName(STREAM)!;
      const viewer = [...session.viewers.values()][0];
      const summary = {
        width: result.width,
        height: result.height,
        fps: result.fps,
        mean,
        change,
        rawSaturation,
        outSaturation,
        background: result.background,
        viewer: viewer?.stats(),
        egress: session.egress.stats(),
      };
      console.log(`overlay: ${JSON.stringify(summary)}`);
      await page.screenshot({ path: path.join(tmpdir(), 'whip-gstreamer-overlay.png') }).catch(() => undefined);
      assert.deepEqual([result.width, result.height], [width, height], "the model's output size, not the publisher's 640×480");
      assert.ok(mean > 15 && mean < 240, `mean ${mean.toFixed(1)}: neither black nor blank`);
      assert.ok(change > 1, `frames 1.5 s apart differ by ${change.toFixed(2)}: the video moves`);
      // Moving, not a frozen frame: a few new frames in the 1.5 s window (3 is 2 fps, what a loaded machine still
      // shows; a stalled stream shows 0). The frame rate itself is reported, not judged.
      assert.ok(result.fps * 1.5 >= 3, `${result.fps * 1.5} new frames in 1.5 s in Chromium`);
      assert.ok(
        outSaturation < rawSaturation / 2,
        `saturation ${outSaturation.toFixed(1)} vs raw bars ${rawSaturation.toFixed(1)}: restyled (sketch), not the raw pattern`,
      );
      assert.equal(result.background, 'rgba(0, 0, 0, 0)', 'transparent page for an OBS Browser Source');
      assert.equal(result.muted, false, '?audio=on unmutes');
      assert.equal(result.audioTracks, 1, 'the publisher audio track reached the player');
      assert.ok((viewer?.stats().audioPacketsOut ?? 0) > 0, 'Opus from GStreamer was forwarded to the viewer');
      assert.equal(liveResources().encoders, 1, 'one shared encoder for the viewer (the H.264 publisher gets nothing back)');
      await page.close();
    },
  );

  test('stopping the publisher (SIGTERM → DELETE) ends the stream and frees the viewer', { timeout: 20_000 }, async () => {
    publisher.kill('SIGTERM');
    await new Promise((r) => publisher.once('exit', r));
    assert.ok(publisherLog.includes('deleted'), publisherLog.join('\n'));
    assert.equal(server.sessions.byStreamName(STREAM), undefined);
    assert.equal(server.sessions.viewerCount, 0);
    assert.equal(liveResources().viewers, 0);
    assert.equal(liveResources().encoders, 0);
  });
});

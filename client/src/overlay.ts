// The viewer overlay at /overlay/:name: chrome-less and transparent (for OBS browser sources), it
// plays the named stream by WHEP full-window and reconnects with exponential backoff when it drops. Behind a
// cluster's front door, a stream whose worker died is found again wherever its publisher comes back.
// A small status line shows while the stream is unavailable; `?status=off` hides it (for broadcasts).
// Audio: the publisher's Opus is forwarded, but the player stays muted unless `?audio=on` — in OBS the
// publisher is usually the same OBS, and its own microphone coming back through a Browser Source would
// double it in the broadcast.

import { authHeaders, deleteResource, negotiate, SignalingError } from './signaling.js';

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/** A connection that shows no new frame for this long is treated as gone (werift sends no close). */
const STALL_MS = 8000;
/** No new frame for this long: ask whether the viewer resource still exists (its server, e.g. a cluster worker, may be gone). */
const PROBE_AFTER_MS = 1500;
/** While the stream is not published, look for it this often: a publisher coming back is seen soon. */
const WAITING_RETRY_MS = 2000;

const player = document.getElementById('player') as HTMLVideoElement;
const state = document.getElementById('state') as HTMLElement;
const name = streamName();
const query = new URLSearchParams(location.search);
if (query.get('status') === 'off') state.hidden = true;
const wantsAudio = query.get('audio') === 'on';
player.muted = !wantsAudio;

let backoff = BACKOFF_MIN_MS;
let current: { pc: RTCPeerConnection; resourceUrl: string; watchdog: ReturnType<typeof setInterval> } | undefined;

function streamName(): string {
  const fromQuery = new URLSearchParams(location.search).get('name');
  if (fromQuery) return fromQuery;
  const parts = location.pathname.split('/').filter(Boolean);
  return decodeURIComponent(parts[parts.length - 1] ?? 'default');
}

async function connect(): Promise<void> {
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  if (wantsAudio) pc.addTransceiver('audio', { direction: 'recvonly' });
  // One MediaStream for both tracks: the server's answer need not put audio and video in one msid stream.
  const media = new MediaStream();
  pc.addEventListener('track', (e) => {
    media.addTrack(e.track);
    if (player.srcObject !== media) player.srcObject = media;
  });
  try {
    const { resourceUrl } = await negotiate(pc, `/whep/${encodeURIComponent(name)}`);
    let lastFrames = -1;
    let lastProgress = performance.now();
    const watchdog = setInterval(() => {
      const frames = player.getVideoPlaybackQuality?.().totalVideoFrames ?? 0;
      if (frames !== lastFrames) {
        lastFrames = frames;
        lastProgress = performance.now();
      } else if (performance.now() - lastProgress > STALL_MS) {
        drop('no video');
      } else if (performance.now() - lastProgress > PROBE_AFTER_MS) {
        void probe(resourceUrl);
      }
    }, 500);
    current = { pc, resourceUrl, watchdog };
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') drop('connection lost');
    });
    player.addEventListener('playing', onPlaying, { once: true });
  } catch (err) {
    pc.close();
    const message =
      err instanceof SignalingError && err.kind === 'not-found'
        ? `waiting for “${name}”`
        : err instanceof Error
          ? err.message
          : String(err);
    retryLater(message, err instanceof SignalingError ? err.retryAt : undefined);
    // Waiting for a publisher is not a failure to back off from for long.
    if (err instanceof SignalingError && err.kind === 'not-found') backoff = Math.min(backoff, WAITING_RETRY_MS);
  }
}

let probing = false;

/** The video stopped: if the viewer resource is gone (its server unreachable, or 404), reconnect now. */
async function probe(resourceUrl: string): Promise<void> {
  if (probing) return;
  probing = true;
  try {
    let gone: boolean;
    try {
      gone = (await fetch(resourceUrl, { headers: authHeaders(), cache: 'no-store' })).status === 404;
    } catch {
      gone = true;
    }
    if (gone && current?.resourceUrl === resourceUrl) drop('stream ended');
  } finally {
    probing = false;
  }
}

function onPlaying(): void {
  backoff = BACKOFF_MIN_MS;
  state.textContent = '';
}

function drop(reason: string): void {
  const c = current;
  if (!c) return;
  current = undefined;
  clearInterval(c.watchdog);
  c.pc.close();
  void deleteResource(c.resourceUrl);
  player.srcObject = null;
  retryLater(reason);
}

function retryLater(reason: string, notBefore?: Date): void {
  const wait = Math.max(backoff, notBefore ? notBefore.getTime() - Date.now() : 0);
  backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  state.textContent = `${reason} · retrying in ${Math.ceil(wait / 1000)} s`;
  setTimeout(() => void connect(), wait);
}

window.addEventListener('pagehide', () => {
  if (current) void deleteResource(current.resourceUrl, true);
});

void connect();

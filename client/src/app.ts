// The web app at `/`: camera in, restyled video out over one WHIP session, live parameters over
// the `control` DataChannel, and a stats overlay. Every failure ends in a message the user can act on.

import { byId, ParamsForm } from './controls.js';
import { fetchModelInfo, parseServerMessage, type ModelInfo, type ServerStats, type SessionParams } from './protocol.js';
import { ParamsSender } from './params-sender.js';
import { Publisher, type ConnectionHealth } from './publisher.js';
import { authHeaders, formatWait, SignalingError } from './signaling.js';
import type { GlassSample } from './glass-to-glass.js';
import { FrameRateMeter, GlassToGlassProbe, readTransportStats, type TransportStats } from './stats.js';

const WHIP_ENDPOINT = '/whip';
/** If the DataChannel has not opened by then, the initial parameters go by PATCH instead. */
const CHANNEL_OPEN_WAIT_MS = 3000;

const ui = {
  start: byId<HTMLButtonElement>('start'),
  resolution: byId<HTMLSelectElement>('resolution'),
  mirror: byId<HTMLInputElement>('mirror'),
  stage: byId<HTMLElement>('stage'),
  input: byId<HTMLVideoElement>('input'),
  cameraOff: byId<HTMLElement>('camera-off'),
  output: byId<HTMLVideoElement>('output'),
  placeholder: byId<HTMLElement>('placeholder'),
  noticeTitle: byId<HTMLElement>('notice-title'),
  noticeDetail: byId<HTMLElement>('notice-detail'),
  stats: byId<HTMLElement>('stats'),
  sessionInfo: byId<HTMLElement>('session-info'),
  status: byId<HTMLElement>('status'),
  modelName: byId<HTMLElement>('model-name'),
  toasts: byId<HTMLElement>('toasts'),
};

type Status = 'idle' | 'connecting' | 'live' | 'interrupted' | 'error';

interface LiveSession {
  camera: MediaStream;
  publisher: Publisher;
  sender: ParamsSender;
  inputMeter: FrameRateMeter;
  outputMeter: FrameRateMeter;
  glass: GlassToGlassProbe;
  serverStats?: ServerStats;
  transport?: TransportStats;
  /** Since when the output shows no new frames (after having shown some); drives the "stalled" status. */
  stalledSince?: number;
  timers: number[];
}

/** Output silent this long while connected: say so instead of showing a frozen "Live". */
const STALL_MS = 3000;
/** Output silent this long: ask whether the session still exists (behind a cluster's front door, its worker may have died). */
const PROBE_AFTER_MS = 1000;
/**
 * Publishing again after the server lost the session: tries 0.5 s apart, doubling to 4 s, for up to a minute — a
 * restarted server loads and warms up its model before it answers, which takes seconds on a busy machine.
 */
const REPUBLISH_FOR_MS = 60_000;
const REPUBLISH_BACKOFF_MAX_MS = 4000;

let model: ModelInfo | undefined;
let session: LiveSession | undefined;
let starting = false;
let retryCountdown: ReturnType<typeof setInterval> | undefined;
let republishing = false;
let probing = false;

const form = new ParamsForm((change, delayMs) => session?.sender.update(change, delayMs));

// ---- lifecycle -------------------------------------------------------------------------------

async function loadModel(): Promise<ModelInfo | undefined> {
  if (model) return model;
  try {
    model = await fetchModelInfo();
    form.setModel(model);
    ui.modelName.textContent = `${model.name} · ${model.width}×${model.height}`;
    return model;
  } catch {
    showNotice('error', 'Cannot reach the server', `${location.host} did not answer. Check that the server is running, then press Start.`);
    setStatus('error', 'Offline');
    return undefined;
  }
}

async function start(): Promise<void> {
  if (starting || session) return;
  starting = true;
  clearInterval(retryCountdown);
  ui.start.disabled = true;
  setStatus('connecting', 'Starting camera…');
  showNotice('info', 'Starting camera…', 'Allow camera access if the browser asks.');
  let camera: MediaStream | undefined;
  let glass: GlassToGlassProbe | undefined;
  let publisher: Publisher;
  try {
    if (!(await loadModel())) return;
    camera = await openCamera();
    ui.input.srcObject = camera;
    ui.cameraOff.hidden = true;
    setStatus('connecting', 'Connecting…');
    showNotice('info', 'Connecting to the server…', 'Negotiating the video connection.');
    ({ publisher, glass } = await publish(camera));
    session = begin(camera, publisher, glass);
    exposeGlassLog(glass, publisher.pc);
  } catch (err) {
    glass?.stop();
    camera?.getTracks().forEach((t) => t.stop());
    ui.input.srcObject = null;
    ui.cameraOff.hidden = false;
    failStart(err);
  } finally {
    starting = false;
    ui.start.disabled = false;
    renderStartButton();
  }
}

/** One WHIP session for the camera (through the page's own origin: behind a cluster's front door, to a worker with room). */
async function publish(camera: MediaStream): Promise<{ publisher: Publisher; glass: GlassToGlassProbe }> {
  let glass: GlassToGlassProbe | undefined;
  const publisher = await Publisher.start(WHIP_ENDPOINT, camera.getVideoTracks()[0], {
    onOutput: (stream) => {
      ui.output.srcObject = stream;
    },
    onHealth,
    onSender: (sender) => {
      glass = new GlassToGlassProbe(sender, ui.input, ui.output);
    },
  });
  return { publisher, glass: glass! };
}

/**
 * The server lost the session (a cluster worker died or restarted; the network dropped): publish the same camera
 * again, with the form's parameters. Through a front door that reaches a live worker; the user does nothing.
 * After REPUBLISH_FOR_MS of failures, or a refusal that retrying cannot fix, the session ends with a message; a full
 * server's Retry-After is obeyed.
 */
async function republish(live: LiveSession): Promise<void> {
  if (republishing || session !== live) return;
  republishing = true;
  setStatus('interrupted', 'Reconnecting…');
  retire(live, { keepCamera: true });
  try {
    const giveUpAt = Date.now() + REPUBLISH_FOR_MS;
    for (let backoffMs = 500; session === live && Date.now() < giveUpAt; backoffMs = Math.min(backoffMs * 2, REPUBLISH_BACKOFF_MAX_MS)) {
      try {
        const { publisher, glass } = await publish(live.camera);
        if (session !== live) {
          glass.stop();
          void publisher.close();
          return;
        }
        session = begin(live.camera, publisher, glass);
        exposeGlassLog(glass, publisher.pc);
        return;
      } catch (err) {
        if (err instanceof SignalingError && err.kind === 'rejected') break;
        const retryAfterMs = err instanceof SignalingError && err.retryAt ? err.retryAt.getTime() - Date.now() : 0;
        await new Promise((resolve) => setTimeout(resolve, Math.max(backoffMs, retryAfterMs)));
      }
    }
    if (session === live) {
      stop({
        title: 'Connection to the server was lost',
        detail: 'The network dropped or the server stopped. Press Start to connect again.',
      });
    }
  } finally {
    republishing = false;
  }
}

/** Output has stopped: if the session is gone from its server (unreachable, or 404), publish again. */
async function probeSession(live: LiveSession): Promise<void> {
  if (probing || republishing) return;
  probing = true;
  try {
    let gone: boolean;
    try {
      gone = (await fetch(live.publisher.resourceUrl, { headers: authHeaders(), cache: 'no-store' })).status === 404;
    } catch {
      gone = true;
    }
    if (gone) await republish(live);
  } finally {
    probing = false;
  }
}

function begin(camera: MediaStream, publisher: Publisher, glass: GlassToGlassProbe): LiveSession {
  const sender = new ParamsSender(
    publisher.channel,
    publisher.resourceUrl,
    (p) => form.apply(p),
    (m) => toast(m),
  );
  const live: LiveSession = {
    camera,
    publisher,
    sender,
    inputMeter: new FrameRateMeter(ui.input),
    outputMeter: new FrameRateMeter(ui.output),
    glass,
    timers: [],
  };
  const sendAll = (): void => sender.update(form.values);
  if (publisher.channel.readyState === 'open') sendAll();
  else publisher.channel.addEventListener('open', sendAll);
  publisher.channel.addEventListener('message', (e) => onServerMessage(live, e.data));
  // Timer ids share one pool in browsers, so clearTimeout ends intervals too.
  live.timers.push(
    window.setTimeout(() => {
      if (publisher.channel.readyState !== 'open' && !publisher.isClosed) sendAll();
    }, CHANNEL_OPEN_WAIT_MS),
    window.setInterval(() => void pollTransport(live), 1000),
    window.setInterval(() => renderStats(live), 500),
  );

  ui.output.addEventListener('playing', onOutputPlaying);
  if (!ui.output.paused && ui.output.readyState >= 2) queueMicrotask(onOutputPlaying);
  ui.stats.hidden = false;
  ui.sessionInfo.hidden = false;
  setStatus('connecting', 'Waiting for video…');
  showNotice('info', 'Waiting for the restyled video…', 'The first frame usually arrives within a second.');
  return live;
}

function onOutputPlaying(): void {
  if (!session) return;
  ui.placeholder.hidden = true;
  setStatus('live', 'Live');
}

/** Frees what a session holds: its timers, meters, probe, parameter sender and WHIP session (DELETE); the camera too unless kept. */
function retire(live: LiveSession, options: { keepalive?: boolean; keepCamera?: boolean } = {}): void {
  live.timers.forEach((t) => clearTimeout(t));
  live.timers = [];
  live.inputMeter.stop();
  live.outputMeter.stop();
  live.glass.stop();
  live.sender.close();
  void live.publisher.close(options);
  if (!options.keepCamera) live.camera.getTracks().forEach((t) => t.stop());
}

/** Ends the session: stops the camera and DELETEs the session resource. */
function stop(reason?: { title: string; detail: string }, options: { keepalive?: boolean } = {}): void {
  const live = session;
  session = undefined;
  if (live) retire(live, options);
  ui.output.removeEventListener('playing', onOutputPlaying);
  ui.input.srcObject = null;
  ui.cameraOff.hidden = false;
  ui.output.srcObject = null;
  ui.stats.hidden = true;
  ui.sessionInfo.hidden = true;
  renderStartButton();
  if (reason) {
    showNotice('error', reason.title, reason.detail);
    setStatus('error', 'Disconnected');
  } else {
    showNotice('info', 'Press Start to restyle your camera', 'Your camera stays off until you press Start.');
    setStatus('idle', 'Idle');
  }
}

function onHealth(health: ConnectionHealth): void {
  if (!session) return;
  switch (health) {
    case 'connected':
      if (!ui.placeholder.hidden) setStatus('connecting', 'Waiting for video…');
      else setStatus('live', 'Live');
      break;
    case 'interrupted':
      setStatus('interrupted', 'Reconnecting…');
      void probeSession(session);
      break;
    case 'lost':
      void republish(session);
      break;
    case 'connecting':
      break;
  }
}

function onServerMessage(live: LiveSession, data: unknown): void {
  const message = parseServerMessage(data);
  if (!message) return;
  switch (message.type) {
    case 'params':
      form.apply(message.params);
      break;
    case 'stats':
      live.serverStats = message as unknown as ServerStats;
      break;
    case 'error':
      toast(message.message);
      void resyncParams(live);
      break;
    case 'closed':
      // Only for the session on screen: after Stop, the server's answer to our own DELETE is no news. A server going
      // away (shutdown, a cluster worker draining) invites a new publish: through a front door, another worker takes it.
      if (session !== live) break;
      if (message.retry) void republish(live);
      else stop({ title: 'The server ended the session', detail: `${message.reason}. Press Start to connect again.` });
      break;
  }
}

/** After a refused change the form may show values the server did not take: show the server's again. */
async function resyncParams(live: LiveSession): Promise<void> {
  try {
    const response = await fetch(`${live.publisher.resourceUrl}/params`, { headers: { Accept: 'application/json', ...authHeaders() } });
    if (response.ok && session === live) form.apply((await response.json()) as Partial<SessionParams>, { force: true });
  } catch {
    // best effort; the next accepted change brings the full parameters anyway
  }
}

// ---- camera ----------------------------------------------------------------------------------

function selectedResolution(): { width: number; height: number } {
  const [width, height] = ui.resolution.value.split('x').map(Number);
  return { width, height };
}

async function openCamera(): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new CameraError(
      'The camera is not available here',
      'Browsers only allow the camera on https:// pages or on http://localhost. Open the page that way and try again.',
    );
  }
  const { width, height } = selectedResolution();
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: 30 } },
    });
  } catch (err) {
    throw cameraError(err, width, height);
  }
}

class CameraError extends Error {
  constructor(
    readonly title: string,
    readonly detail: string,
  ) {
    super(`${title}: ${detail}`);
  }
}

function cameraError(err: unknown, width: number, height: number): CameraError {
  const name = err instanceof DOMException ? err.name : '';
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return new CameraError(
        'Camera access was denied',
        'Allow the camera for this site (the camera icon in the address bar or the site settings), then press Start again.',
      );
    case 'NotFoundError':
    case 'DevicesNotFoundError':
      return new CameraError('No camera found', 'Connect a camera (or enable it in your system settings), then press Start again.');
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return new CameraError(
        'The camera could not be started',
        'Another application may be using it. Close that application, then press Start again.',
      );
    case 'OverconstrainedError':
      return new CameraError(`The camera cannot capture ${width}×${height}`, 'Choose another resolution and press Start again.');
    default:
      return new CameraError('The camera could not be started', err instanceof Error ? err.message : String(err));
  }
}

async function changeResolution(): Promise<void> {
  const { width, height } = selectedResolution();
  const track = session?.camera.getVideoTracks()[0];
  if (!track) return;
  try {
    await track.applyConstraints({ width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: 30 } });
    const actual = track.getSettings();
    if (actual.width !== undefined && (actual.width !== width || actual.height !== height)) {
      toast(`The camera delivers ${actual.width}×${actual.height} instead of ${width}×${height}.`, 'info');
    }
  } catch {
    toast(`The camera cannot switch to ${width}×${height}.`);
  }
}

/** Panels take the camera's shape, whatever resolution it actually delivers. */
function fitPanelsToCamera(): void {
  const { videoWidth: w, videoHeight: h } = ui.input;
  if (w > 0 && h > 0) ui.stage.style.setProperty('--aspect', `${w} / ${h}`);
}

// ---- failures --------------------------------------------------------------------------------

function failStart(err: unknown): void {
  setStatus('error', 'Not connected');
  if (err instanceof CameraError) {
    showNotice('error', err.title, err.detail);
    return;
  }
  if (err instanceof SignalingError) {
    switch (err.kind) {
      case 'unreachable':
        showNotice('error', 'Cannot reach the server', err.message);
        return;
      case 'full':
        showServerFull(err);
        return;
      default:
        showNotice('error', 'The server refused the stream', err.message);
        return;
    }
  }
  showNotice('error', 'Could not connect', err instanceof Error ? err.message : String(err));
}

function showServerFull(err: SignalingError): void {
  const why = err.reason ? `The server says: ${err.reason.replace(/\.?$/, '.')}` : 'All sessions are in use.';
  const render = (): void => {
    const left = err.retryAt ? err.retryAt.getTime() - Date.now() : 0;
    if (err.retryAt && left > 0) {
      showNotice('wait', 'The server is full', `${why} Try again in ${formatWait(left)}.`);
    } else {
      clearInterval(retryCountdown);
      showNotice('wait', 'The server was full', 'A session may be free now: press Start to try again.');
    }
  };
  render();
  setStatus('error', 'Server full');
  clearInterval(retryCountdown);
  retryCountdown = setInterval(render, 1000);
}

// ---- rendering -------------------------------------------------------------------------------

function setStatus(state: Status, text: string): void {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
}

function showNotice(kind: 'info' | 'error' | 'wait', title: string, detail: string): void {
  ui.placeholder.hidden = false;
  ui.placeholder.dataset.kind = kind;
  ui.noticeTitle.textContent = title;
  ui.noticeDetail.textContent = detail;
}

function renderStartButton(): void {
  const live = session !== undefined;
  ui.start.textContent = live ? 'Stop' : 'Start';
  ui.start.classList.toggle('stop', live);
}

function toast(message: string, kind: 'error' | 'info' = 'error'): void {
  const el = document.createElement('div');
  el.className = `toast ${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  el.textContent = message;
  ui.toasts.append(el);
  while (ui.toasts.childElementCount > 3) ui.toasts.firstElementChild?.remove();
  setTimeout(() => el.remove(), 5000);
}

function trackStall(live: LiveSession, outputFps: number | undefined): void {
  if (!ui.placeholder.hidden || outputFps === undefined) return; // no video shown yet
  if (outputFps > 0) {
    if (live.stalledSince !== undefined) setStatus('live', 'Live');
    live.stalledSince = undefined;
    return;
  }
  live.stalledSince ??= performance.now();
  if (performance.now() - live.stalledSince > PROBE_AFTER_MS) void probeSession(live);
  if (performance.now() - live.stalledSince > STALL_MS && ui.status.dataset.state === 'live') {
    setStatus('interrupted', 'No video from server');
  }
}

async function pollTransport(live: LiveSession): Promise<void> {
  try {
    live.transport = await readTransportStats(live.publisher.pc);
  } catch {
    // closed between ticks
  }
}

function renderStats(live: LiveSession): void {
  const stat = (name: string, text: string): void => {
    const el = ui.stats.querySelector<HTMLElement>(`[data-stat="${name}"]`);
    if (el) el.textContent = text;
  };
  const fps = (n: number | undefined): string => (n === undefined ? '–' : `${n.toFixed(0)} fps`);
  const ms = (n: number | undefined): string => (typeof n === 'number' ? n.toFixed(0) : '–');
  const outputFps = live.outputMeter.fps ?? live.transport?.receivedFps;
  trackStall(live, outputFps);
  const inputFps = live.transport?.sentFps ?? live.inputMeter.fps;
  const res = live.transport?.sendResolution;
  stat('input-fps', `${fps(inputFps)}${res ? ` · ${res}` : ''}`);
  stat('output-fps', fps(outputFps));
  const s = live.serverStats;
  stat('latency', s ? `${ms(s.latencyP50Ms)} / ${ms(s.latencyP95Ms)} ms` : '–');
  stat('dropped', s ? `${s.droppedFrames ?? 0}${s.deadlineMisses ? ` · ${s.deadlineMisses} late` : ''}` : '–');
  stat('rtt', live.transport?.roundTripMs === undefined ? '–' : `${ms(live.transport.roundTripMs)} ms`);
  renderGlassToGlass(live.glass);

  const info = (name: string, text: string): void => {
    const el = ui.sessionInfo.querySelector<HTMLElement>(`[data-info="${name}"]`);
    if (el) el.textContent = text;
  };
  info('codec', live.transport?.codec ?? '–');
  info('sending', res ? `${res} @ ${fps(inputFps)}` : '–');
  const sessionPath = new URL(live.publisher.resourceUrl).pathname;
  info('session', sessionPath);
  ui.sessionInfo.querySelector<HTMLElement>('[data-info="session"]')!.title = live.publisher.resourceUrl;
}

/** Glass-to-glass p50/p95 over the last 5 s; the tooltip has the parts, or why it cannot be measured. */
function renderGlassToGlass(glass: GlassToGlassProbe): void {
  const el = ui.stats.querySelector<HTMLElement>('[data-stat="glass"]');
  if (!el) return;
  if (glass.unsupported) {
    el.textContent = 'n/a';
    el.title = glass.unsupported;
    return;
  }
  const s = glass.meter.summary(performance.now());
  if (s.count === 0) {
    el.textContent = '–';
    el.title = 'Waiting for restyled frames to match to camera frames by RTP timestamp.';
    return;
  }
  const ms = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(0)} ms` : '–');
  el.textContent = `${s.glassP50.toFixed(0)} / ${s.glassP95.toFixed(0)} ms`;
  el.title = [
    `Camera capture to restyled frame on screen, median parts over the last 5 s:`,
    s.fromCapture ? `capture → sent ${ms(s.captureToSentP50)}` : 'from encoder output (capture times unknown in this browser)',
    `network + server ${ms(s.sentToReceiveP50)}`,
    `receive → display ${ms(s.receiveToDisplayP50)}`,
    `${(s.matchedRatio * 100).toFixed(0)}% of shown frames matched by RTP timestamp`,
  ].join('\n');
}

/**
 * With `?glass-log` on the page URL (the browser benchmark and test), every matched glass-to-glass sample is
 * kept on window.sdsGlassToGlass for the harness to read; otherwise nothing accumulates.
 */
function exposeGlassLog(glass: GlassToGlassProbe, pc: RTCPeerConnection): void {
  if (!new URLSearchParams(location.search).has('glass-log')) return;
  const samples: GlassSample[] = [];
  glass.meter.onSample = (sample) => samples.push(sample);
  (window as unknown as { sdsGlassToGlass: unknown }).sdsGlassToGlass = {
    samples,
    timeOrigin: performance.timeOrigin,
    unsupported: () => glass.unsupported,
    summary: () => glass.meter.summary(performance.now()),
    /** Cumulative getStats counters that explain the parts: encode (outbound), jitter buffer and decode (inbound). */
    rtpCounters: async () => {
      const counters: Record<string, number> = {};
      const keys: Record<string, string[]> = {
        'outbound-rtp': ['totalEncodeTime', 'framesEncoded'],
        'inbound-rtp': ['jitterBufferDelay', 'jitterBufferTargetDelay', 'jitterBufferEmittedCount', 'totalDecodeTime', 'framesDecoded'],
      };
      (await pc.getStats()).forEach((s: Record<string, unknown>) => {
        if (s.kind !== 'video') return;
        for (const key of keys[String(s.type)] ?? []) if (typeof s[key] === 'number') counters[key] = s[key];
      });
      return counters;
    },
  };
}

// ---- wiring ----------------------------------------------------------------------------------

ui.start.addEventListener('click', () => (session ? stop() : void start()));
ui.resolution.addEventListener('change', () => void changeResolution());
ui.input.addEventListener('resize', fitPanelsToCamera);
ui.mirror.addEventListener('change', () => ui.stage.classList.toggle('mirrored', ui.mirror.checked));
ui.stage.classList.toggle('mirrored', ui.mirror.checked);
// sendBeacon cannot DELETE; a keepalive fetch outlives the page.
window.addEventListener('pagehide', () => stop(undefined, { keepalive: true }));

void loadModel();

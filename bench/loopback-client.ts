// A werift WHIP publisher for the benchmark and integration tests: sends a pre-encoded clip paced at a fixed
// frame rate over real WebRTC, receives the restyled track on the same transceiver, decodes it, and reports
// each output frame with its RTP timestamp so the caller can match it to the input frame it came from.
import { H264Packetizer, Vp8Packetizer, type RTCDataChannel } from 'werift';
import sharp from 'sharp';
import { existsSync } from 'node:fs';
import { nowMs } from '../frame/clock.js';
import type { RgbImage } from '../frame/video-frame.js';
import { VideoEncoder, type EncodedPicture, type VideoCodecName } from '../stream/video-codec.js';
import { authHeader, exchangeOffer, loopbackPeerConnection, ReceivedVideo, type ClientIce } from './werift-client.js';

export interface LoopbackClientOptions {
  whipUrl: string;
  codec: VideoCodecName;
  fps: number;
  /** The clip, at width×height. Encoded once up front; sent once (or looped with `loop`). */
  frames: RgbImage[];
  width: number;
  height: number;
  loop?: boolean;
  maxBitrateKbps?: number;
  /** Keyframe interval in frames (default fps: one per second, so a server PLI is answered within 1 s). */
  keyframeInterval?: number;
  dataChannel?: boolean;
  /** 'sendonly' publishes like OBS/WHIP: the server must answer recvonly and send nothing back. */
  direction?: 'sendrecv' | 'sendonly';
  /** Add a sendonly audio m-line first, as OBS does (no audio is sent). */
  audio?: boolean;
  onOutputFrame(rtpTimestamp: number, rgb: RgbImage, receivedMs: number): void;
  onData?(text: string): void;
  /** Sent as `Authorization: Bearer` on the WHIP POST and the DELETE (a server started with --token). */
  token?: string;
  /** TURN servers and relay-only policy (the NAT test's client); default: host candidates only. */
  ice?: ClientIce;
  /** ICE + DTLS must complete within this long after the answer, or creation fails (default 10000). */
  connectTimeoutMs?: number;
}

export interface LoopbackClient {
  /** Session resource URL from the WHIP Location header (absolute). */
  readonly location: string;
  /** The server's SDP answer. */
  readonly answerSdp: string;
  /** The client's own offer, with its candidates. */
  readonly offerSdp: string;
  /** RTP timestamp → index into `frames`, and when it was sent (epoch ms). */
  readonly sent: Map<number, { index: number; sentMs: number }>;
  /** Resolves when every frame has been sent once (never, with `loop`, until close). */
  readonly finished: Promise<void>;
  sendData(text: string): void;
  /** Send a PLI for the restyled stream, as a browser does after loss. */
  requestKeyframe(): void;
  stats(): { framesSent: number; framesReceived: number; keyframesReceived: number; decodeErrors: number };
  /** Stops sending, ends the WHIP session (DELETE) and frees everything. */
  close(options?: { deleteSession?: boolean }): Promise<void>;
}

/**
 * A publisher as the cluster, fan-out and drain tests and benches use one: `clip` looped as VP8 at 10 fps, at
 * the clip's own size, output frames ignored; `options` overrides any of that.
 */
export function publishLoopedClip(
  whipUrl: string,
  clip: RgbImage[],
  options: Partial<Omit<LoopbackClientOptions, 'whipUrl' | 'frames'>> = {},
): Promise<LoopbackClient> {
  return createLoopbackClient({
    whipUrl,
    codec: 'VP8',
    fps: 10,
    frames: clip,
    width: clip[0]!.width,
    height: clip[0]!.height,
    loop: true,
    onOutputFrame: () => {},
    ...options,
  });
}

export async function createLoopbackClient(options: LoopbackClientOptions): Promise<LoopbackClient> {
  const { codec, fps } = options;
  const encoded = await encodeClip(options);
  const pc = loopbackPeerConnection(codec, [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'goog-remb' }], options.ice);
  if (options.audio) pc.addTransceiver('audio', { direction: 'sendonly' });
  const transceiver = pc.addTransceiver('video', { direction: options.direction ?? 'sendrecv' });
  let dc: RTCDataChannel | undefined;
  if (options.dataChannel) {
    dc = pc.createDataChannel('control');
    dc.onMessage.subscribe((m) => options.onData?.(typeof m === 'string' ? m : m.toString('utf8')));
  }

  let closed = false;
  const received = await ReceivedVideo.create(codec, (rgb, rtpTimestamp, lastPacketMs) =>
    options.onOutputFrame(rtpTimestamp, rgb, lastPacketMs),
  );
  transceiver.onTrack.subscribe((track) => received.attach(track));
  let answered;
  try {
    answered = await exchangeOffer(pc, options.whipUrl, { token: options.token, protocol: 'WHIP' });
  } catch (error) {
    // A refused or unreachable server: free the peer connection too (its sockets would keep the process alive).
    await pc.close();
    await received.close();
    throw error;
  }
  const { location, answerSdp } = answered;
  const auth = authHeader(options.token);
  await waitFor(() => pc.connectionState === 'connected', pc.connectionStateChange, options.connectTimeoutMs ?? 10000).catch(
    async (error: unknown) => {
      await Promise.all([pc.close(), received.close()]);
      throw error;
    },
  );

  const sent = new Map<number, { index: number; sentMs: number }>();
  const packetizer = codec === 'VP8' ? new Vp8Packetizer({ maxPayloadSize: 1200 }) : new H264Packetizer({ maxPayloadSize: 1200 });
  const baseTs = (Math.random() * 0xffffffff) >>> 0;
  const step = Math.round(90000 / fps);
  let framesSent = 0;
  let timer: NodeJS.Timeout | undefined;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  const start = performance.now();
  const sendNext = (): void => {
    if (closed) return;
    if (!options.loop && framesSent >= encoded.length) {
      resolveFinished();
      return;
    }
    const index = framesSent % encoded.length;
    const ts = (baseTs + framesSent * step) >>> 0;
    const picture = encoded[index]!;
    const packets =
      packetizer instanceof H264Packetizer
        ? packetizer.packetize(picture.data, ts, { isKeyframe: picture.keyframe })
        : packetizer.packetize(picture.data, ts);
    sent.set(ts, { index, sentMs: nowMs() });
    for (const p of packets) void transceiver.sender.sendRtp(p).catch(() => {});
    framesSent++;
    // Pace against the start time, not the previous tick, so timer jitter does not accumulate.
    timer = setTimeout(sendNext, Math.max(0, start + (framesSent * 1000) / fps - performance.now()));
  };
  sendNext();

  return {
    location,
    answerSdp,
    offerSdp: pc.localDescription?.sdp ?? '',
    sent,
    finished,
    sendData: (text) => {
      if (dc?.readyState === 'open') dc.send(text);
    },
    requestKeyframe: () => {
      if (received.remoteSsrc !== undefined) void transceiver.receiver.sendRtcpPLI(received.remoteSsrc).catch(() => {});
    },
    stats: () => {
      const r = received.stats();
      return { framesSent, framesReceived: r.framesDecoded, keyframesReceived: r.keyframes, decodeErrors: r.decodeErrors };
    },
    close: async ({ deleteSession = true } = {}) => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      resolveFinished();
      if (deleteSession) await fetch(location, { method: 'DELETE', headers: auth }).catch(() => undefined);
      await pc.close();
      await received.close();
    },
  };
}

async function encodeClip(options: LoopbackClientOptions): Promise<EncodedPicture[]> {
  const { codec, fps, width, height } = options;
  const interval = options.keyframeInterval ?? fps;
  const encoder = await VideoEncoder.create({ codec, width, height, maxBitrateKbps: options.maxBitrateKbps ?? 2500, fps });
  try {
    const out: EncodedPicture[] = [];
    for (let i = 0; i < options.frames.length; i++) {
      const pictures = await encoder.encode(options.frames[i]!, i * Math.round(90000 / fps), i % interval === 0);
      if (pictures.length !== 1) throw new Error(`encoder returned ${pictures.length} packets for frame ${i}; expected 1 (no lag)`);
      out.push(pictures[0]!);
    }
    return out;
  } finally {
    await encoder.close();
  }
}

function waitFor(done: () => boolean, event: { subscribe(cb: () => void): { unSubscribe: () => void } }, timeoutMs: number): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unSubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const sub = event.subscribe(() => {
      if (!done()) return;
      clearTimeout(timer);
      sub.unSubscribe();
      resolve();
    });
  });
}

/** Decode a PNG/JPEG into packed RGB24. */
export async function loadPhoto(path: string): Promise<RgbImage> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/**
 * A photo for test clips: the model's held-out test photo when present, otherwise a generated scene with
 * smooth shading and edges (like a photo, compressible, and distinct frame to frame when panned).
 */
export async function loadTestPhoto(path = 'models/default/testdata/heldout.png'): Promise<RgbImage> {
  if (existsSync(path)) return loadPhoto(path);
  const w = 1280;
  const h = 960;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">
    <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#3a6fb0"/><stop offset="1" stop-color="#cfe3f5"/></linearGradient>
    <radialGradient id="sun"><stop offset="0" stop-color="#fff6c0"/><stop offset="1" stop-color="#f0a020"/></radialGradient></defs>
    <rect width="${w}" height="${h}" fill="url(#sky)"/>
    <circle cx="980" cy="200" r="110" fill="url(#sun)"/>
    <path d="M0 640 L200 420 L380 600 L560 360 L800 620 L1000 460 L1280 650 L1280 960 L0 960 Z" fill="#4f6b3a"/>
    <path d="M0 760 Q320 680 640 770 T1280 740 L1280 960 L0 960 Z" fill="#7a5a32"/>
    ${Array.from({ length: 14 }, (_, i) => `<rect x="${60 + i * 88}" y="${700 - (i % 5) * 30}" width="40" height="${120 + (i % 5) * 30}" fill="#${(0x203040 + i * 0x0a0b07).toString(16).slice(-6)}"/>`).join('')}
    <text x="80" y="140" font-size="96" font-family="sans-serif" fill="#ffffff">loopback</text>
  </svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/**
 * A clip of `frames` width×height pictures panning smoothly across `photo` (left→right and back), like a
 * slowly moving webcam. The photo is first scaled so a window covers 80% of its height.
 */
export async function makePanClip(photo: RgbImage, width: number, height: number, frames: number): Promise<RgbImage[]> {
  const scale = Math.max(height / (photo.height * 0.8), (width * 1.25) / photo.width);
  const pw = Math.max(width, Math.round(photo.width * scale));
  const ph = Math.max(height, Math.round(photo.height * scale));
  const big = await sharp(Buffer.from(photo.data.buffer, photo.data.byteOffset, photo.data.byteLength), {
    raw: { width: photo.width, height: photo.height, channels: 3 },
  })
    .resize(pw, ph, { fit: 'fill' })
    .raw()
    .toBuffer();
  const clip: RgbImage[] = [];
  for (let i = 0; i < frames; i++) {
    const phase = frames > 1 ? i / (frames - 1) : 0;
    const t = 0.5 - 0.5 * Math.cos(phase * 2 * Math.PI); // 0 → 1 → 0
    const x0 = Math.round(t * (pw - width));
    const y0 = Math.round(((ph - height) / 2) * (1 + 0.5 * Math.sin(phase * 2 * Math.PI)));
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      const src = ((y0 + y) * pw + x0) * 3;
      data.set(big.subarray(src, src + width * 3), y * width * 3);
    }
    clip.push({ width, height, data });
  }
  return clip;
}

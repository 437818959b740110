// A werift WHEP viewer for the tests and the soak benchmark: POSTs a recvonly offer to /whep/<name>, decodes
// what arrives (or, with `decode: false`, only counts packets, for many viewers at low cost) and reports
// decoded frames, keyframes and the time of the first decoded picture.
import { nowMs } from '../frame/clock.js';
import type { RgbImage } from '../frame/video-frame.js';
import type { VideoCodecName } from '../stream/video-codec.js';
import { authHeader, exchangeOffer, loopbackPeerConnection, ReceivedVideo } from './werift-client.js';

export interface WhepViewer {
  readonly location: string;
  readonly answerSdp: string;
  readonly headers: Headers;
  /** When the POST was answered (nowMs). */
  readonly answeredMs: number;
  /** When the first picture was decoded (nowMs), or null. */
  firstDecodedMs(): number | null;
  stats(): { framesDecoded: number; keyframes: number; decodeErrors: number; packets: number; audioPackets: number };
  lastImage(): RgbImage | undefined;
  /** Ask the server for a keyframe (PLI), as a browser does after loss. */
  requestKeyframe(): void;
  close(options?: { deleteResource?: boolean }): Promise<void>;
}

export async function startWhepViewer(options: {
  whepUrl: string;
  codec?: VideoCodecName;
  audio?: boolean;
  token?: string;
  /** Decode the video (default); false only counts its packets. */
  decode?: boolean;
}): Promise<WhepViewer> {
  const codec = options.codec ?? 'VP8';
  const pc = loopbackPeerConnection(codec, [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }]);
  let audioPackets = 0;
  let packets = 0;
  if (options.audio) {
    const audio = pc.addTransceiver('audio', { direction: 'recvonly' });
    audio.onTrack.subscribe((track) => track.onReceiveRtp.subscribe(() => audioPackets++));
  }
  const video = pc.addTransceiver('video', { direction: 'recvonly' });
  let first: number | null = null;
  let last: RgbImage | undefined;
  let remoteSsrc: number | undefined;
  const received =
    options.decode === false
      ? undefined
      : await ReceivedVideo.create(codec, (rgb) => {
          last = rgb;
          first ??= nowMs();
        });
  video.onTrack.subscribe((track) => {
    if (received) received.attach(track);
    else
      track.onReceiveRtp.subscribe((rtp) => {
        packets++;
        remoteSsrc = rtp.header.ssrc;
      });
  });
  let answered;
  try {
    answered = await exchangeOffer(pc, options.whepUrl, { token: options.token, protocol: 'WHEP' });
  } catch (error) {
    await received?.close();
    throw error;
  }
  const answeredMs = nowMs();
  const auth = authHeader(options.token);
  let closed = false;
  return {
    location: answered.location,
    answerSdp: answered.answerSdp,
    headers: answered.headers,
    answeredMs,
    firstDecodedMs: () => first,
    stats: () => {
      const r = received?.stats() ?? { packets, framesDecoded: 0, keyframes: 0, decodeErrors: 0 };
      return { framesDecoded: r.framesDecoded, keyframes: r.keyframes, decodeErrors: r.decodeErrors, packets: r.packets, audioPackets };
    },
    lastImage: () => last,
    requestKeyframe: () => {
      const ssrc = received?.remoteSsrc ?? remoteSsrc;
      if (ssrc !== undefined) void video.receiver.sendRtcpPLI(ssrc).catch(() => {});
    },
    close: async ({ deleteResource = true } = {}) => {
      if (closed) return;
      closed = true;
      if (deleteResource) await fetch(answered.location, { method: 'DELETE', headers: auth }).catch(() => undefined);
      await pc.close();
      await received?.close();
    },
  };
}

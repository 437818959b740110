// A real werift WHEP viewer for tests: POSTs a recvonly offer to /whep/<name>, decodes what arrives (node-av)
// and reports decoded frames, keyframes and the time of the first decoded picture.
import { RTCPeerConnection, useSdesMid } from 'werift';
import { nowMs } from '../../frame/clock.js';
import type { RgbImage } from '../../frame/video-frame.js';
import { FrameAssembler } from '../../stream/rtp-depacketizer.js';
import { PictureScaler, VideoDecoder, type VideoCodecName } from '../../stream/video-codec.js';
import { opusParameters, videoCodecParameters } from '../../stream/rtp-codecs.js';
import { iceGatheringComplete } from '../../stream/ice-gathering.js';

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
}): Promise<WhepViewer> {
  const codec = options.codec ?? 'VP8';
  const rtcpFeedback = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }];
  const pc = new RTCPeerConnection({
    codecs: { video: [videoCodecParameters(codec, rtcpFeedback)], audio: [opusParameters()] },
    headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    bundlePolicy: 'max-bundle',
  });
  if (options.audio) {
    const audio = pc.addTransceiver('audio', { direction: 'recvonly' });
    audio.onTrack.subscribe((track) => track.onReceiveRtp.subscribe(() => counters.audioPackets++));
  }
  const video = pc.addTransceiver('video', { direction: 'recvonly' });
  const decoder = await VideoDecoder.create(codec);
  let scaler: PictureScaler | undefined;
  const assembler = new FrameAssembler(codec);
  const counters = { framesDecoded: 0, keyframes: 0, decodeErrors: 0, packets: 0, audioPackets: 0 };
  let first: number | null = null;
  let last: RgbImage | undefined;
  let remoteSsrc: number | undefined;
  let closed = false;
  video.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((rtp) => {
      counters.packets++;
      remoteSsrc = rtp.header.ssrc;
      const frames = assembler.push(
        { sequenceNumber: rtp.header.sequenceNumber, timestamp: rtp.header.timestamp, marker: rtp.header.marker, payload: rtp.payload },
        nowMs(),
      );
      for (const au of frames) {
        if (au.keyframe) counters.keyframes++;
        void (async () => {
          try {
            const pictures = await decoder.decode(au.data, au.keyframe);
            for (const picture of pictures) {
              try {
                if (closed) continue;
                scaler ??= new PictureScaler({ width: picture.width, height: picture.height });
                last = await scaler.toRgb(picture);
                counters.framesDecoded++;
                first ??= nowMs();
              } finally {
                picture.free();
              }
            }
          } catch {
            counters.decodeErrors++;
            assembler.requireKeyframe();
          }
        })();
      }
    });
  });

  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  const auth: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : {};
  const res = await fetch(options.whepUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', ...auth },
    body: pc.localDescription!.sdp,
  });
  const body = await res.text();
  if (res.status !== 201) {
    await pc.close();
    await decoder.close();
    throw Object.assign(new Error(`WHEP POST ${options.whepUrl} → ${res.status}: ${body}`), { status: res.status });
  }
  const answeredMs = nowMs();
  const location = new URL(res.headers.get('location') ?? '', res.url || options.whepUrl).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  return {
    location,
    answerSdp: body,
    headers: res.headers,
    answeredMs,
    firstDecodedMs: () => first,
    stats: () => ({ ...counters }),
    lastImage: () => last,
    requestKeyframe: () => {
      if (remoteSsrc !== undefined) void video.receiver.sendRtcpPLI(remoteSsrc).catch(() => {});
    },
    close: async ({ deleteResource = true } = {}) => {
      if (closed) return;
      closed = true;
      if (deleteResource) await fetch(location, { method: 'DELETE', headers: auth }).catch(() => undefined);
      await pc.close();
      await Promise.all([decoder.close(), scaler?.close()]);
    },
  };
}

// The werift client side that the benchmarks and the tests share (WHIP publisher: loopback-client.ts; WHEP
// viewer: whep-viewer.ts): a peer connection for loopback, the offer → POST → answer exchange, and a
// received video track decoded to RGB (depacketize → decode → scale), counted.
import { RTCPeerConnection, useSdesMid, type MediaStreamTrack, type RTCIceServer } from 'werift';
import { nowMs } from '../frame/clock.js';
import type { RgbImage } from '../frame/video-frame.js';
import { iceGatheringComplete } from '../stream/ice-gathering.js';
import { opusParameters, videoCodecParameters } from '../stream/rtp-codecs.js';
import { FrameAssembler } from '../stream/rtp-depacketizer.js';
import { PictureScaler, VideoDecoder, type VideoCodecName } from '../stream/video-codec.js';

/** How a client reaches the server besides its host candidates: TURN servers, and whether to use only relayed candidates. */
export interface ClientIce {
  iceServers?: RTCIceServer[];
  iceTransportPolicy?: 'all' | 'relay';
  /** Gather every interface's address too (a client in a test's network namespace); default: loopback only. */
  gatherInterfaces?: boolean;
}

/**
 * A peer connection that bundles everything on one transport and, unless told to gather interfaces, offers only a
 * loopback candidate: tests and benches keep their media on loopback, never this machine's other addresses.
 */
export function loopbackPeerConnection(
  codec: VideoCodecName,
  rtcpFeedback: { type: string; parameter?: string }[],
  ice: ClientIce = {},
): RTCPeerConnection {
  return new RTCPeerConnection({
    codecs: { video: [videoCodecParameters(codec, rtcpFeedback)], audio: [opusParameters()] },
    headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    ...(ice.gatherInterfaces ? {} : { iceUseIpv4: false, iceUseIpv6: false }),
    // Always a list: werift's default holds a public STUN server.
    iceServers: ice.iceServers ?? [],
    iceTransportPolicy: ice.iceTransportPolicy ?? 'all',
    // With werift's default policy the offer gathers one transport per m-line; the server bundles them, and
    // close() then leaves the unused transport's UDP sockets open (the process never exits).
    bundlePolicy: 'max-bundle',
  });
}

export interface Answered {
  answerSdp: string;
  /** The resource URL from the Location header (absolute; resolved against a redirect's final URL). */
  location: string;
  headers: Headers;
}

/**
 * Offer, POST it to a WHIP or WHEP endpoint and apply the answer. Anything but 201 closes `pc` and throws
 * an error with the status and the server's message (`status` set on it).
 */
export async function exchangeOffer(
  pc: RTCPeerConnection,
  url: string,
  options: { token?: string; protocol: 'WHIP' | 'WHEP' },
): Promise<Answered> {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', ...authHeader(options.token) },
    body: pc.localDescription!.sdp,
  });
  const body = await res.text();
  if (res.status !== 201) {
    await pc.close();
    throw Object.assign(new Error(`${options.protocol} POST ${url} → ${res.status}: ${body}`), { status: res.status });
  }
  // Resolved against the final URL: a cluster's front door redirects (307) the offer to a worker.
  const location = new URL(res.headers.get('location') ?? '', res.url || url).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  return { answerSdp: body, location, headers: res.headers };
}

export function authHeader(token: string | undefined): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export interface ReceivedVideoStats {
  packets: number;
  framesDecoded: number;
  keyframes: number;
  decodeErrors: number;
}

/** A received video track, decoded: each picture goes to `onPicture` as RGB with its RTP timestamp. */
export class ReceivedVideo {
  private readonly assembler: FrameAssembler;
  private scaler: PictureScaler | undefined;
  private closed = false;
  /** SSRC of the track, once a packet arrived (for PLI). */
  remoteSsrc: number | undefined;
  private readonly counters: ReceivedVideoStats = { packets: 0, framesDecoded: 0, keyframes: 0, decodeErrors: 0 };

  private constructor(
    private readonly decoder: VideoDecoder,
    codec: VideoCodecName,
    private readonly onPicture: (rgb: RgbImage, rtpTimestamp: number, lastPacketMs: number) => void,
  ) {
    this.assembler = new FrameAssembler(codec);
  }

  static async create(
    codec: VideoCodecName,
    onPicture: (rgb: RgbImage, rtpTimestamp: number, lastPacketMs: number) => void,
  ): Promise<ReceivedVideo> {
    return new ReceivedVideo(await VideoDecoder.create(codec), codec, onPicture);
  }

  attach(track: MediaStreamTrack): void {
    track.onReceiveRtp.subscribe((rtp) => {
      this.counters.packets++;
      this.remoteSsrc = rtp.header.ssrc;
      const frames = this.assembler.push(
        { sequenceNumber: rtp.header.sequenceNumber, timestamp: rtp.header.timestamp, marker: rtp.header.marker, payload: rtp.payload },
        nowMs(),
      );
      for (const au of frames) {
        if (au.keyframe) this.counters.keyframes++;
        void (async () => {
          try {
            const pictures = await this.decoder.decode(au.data, au.keyframe);
            for (const picture of pictures) {
              try {
                if (this.closed) continue;
                this.scaler ??= new PictureScaler({ width: picture.width, height: picture.height });
                const rgb = await this.scaler.toRgb(picture);
                this.counters.framesDecoded++;
                this.onPicture(rgb, au.rtpTimestamp, au.lastPacketMs);
              } finally {
                picture.free();
              }
            }
          } catch {
            this.counters.decodeErrors++;
            this.assembler.requireKeyframe();
          }
        })();
      }
    });
  }

  stats(): ReceivedVideoStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.decoder.close(), this.scaler?.close()]);
  }
}

// A werift WHIP publisher that sends whatever a test hands it — crafted frames, mutated RTP, raw RTCP, raw
// bytes on the ICE connection — over the real DTLS-SRTP session, and reports the keyframe requests (PLI/FIR)
// the server sends back. For fuzz and fault tests; the loopback client (bench/) is the well-behaved one.
import { H264Packetizer, RTCPeerConnection, RtpHeader, RtpPacket, Vp8Packetizer, useSdesMid, type RTCDataChannel } from 'werift';
import { isKeyframeRequest } from '../../stream/rtcp-feedback.js';
import type { RgbImage } from '../../frame/video-frame.js';
import { VideoEncoder, type EncodedPicture, type VideoCodecName } from '../../stream/video-codec.js';
import { iceGatheringComplete } from '../../stream/ice-gathering.js';
import { opusParameters, videoCodecParameters } from '../../stream/rtp-codecs.js';

export interface RawPublisher {
  readonly pc: RTCPeerConnection;
  readonly location: string;
  /** The server's session id (the last path segment of Location). */
  readonly sessionId: string;
  readonly codec: VideoCodecName;
  readonly ssrc: number;
  readonly payloadType: number;
  readonly dataChannel: RTCDataChannel;
  /** Keyframe requests (PLI/FIR for our SSRC) the server sent, with their arrival times (ms, performance.now). */
  readonly keyframeRequests: number[];
  /** Packetize one encoded picture at `timestamp` and send it through werift's sender. */
  sendPicture(picture: EncodedPicture, timestamp: number): number;
  /** Send one RTP packet with exactly this header (SSRC, payload type, sequence number included) and payload. */
  sendRawRtp(
    header: { sequenceNumber: number; timestamp: number; marker: boolean; payloadType?: number; ssrc?: number },
    payload: Buffer,
  ): void;
  /** Encrypt `compound` as SRTCP (whatever it contains) and send it. False when SRTCP refused to encrypt it. */
  sendRawRtcp(compound: Buffer): boolean;
  /** Send bytes unencrypted on the ICE connection, as a peer without the SRTP keys would. */
  sendRawDatagram(bytes: Buffer): void;
  close(options?: { deleteSession?: boolean }): Promise<void>;
}

interface DtlsInternals {
  sendRtp(payload: Buffer, header: RtpHeader): Promise<number>;
  srtcp: { encrypt(raw: Buffer): Buffer };
  iceTransport: { connection: { send(data: Buffer): Promise<void> } };
  onRtcp: { subscribe(cb: (rtcp: never) => void): { unSubscribe(): void } };
}

export async function startRawPublisher(options: {
  baseUrl: string;
  codec: VideoCodecName;
  path?: string;
  connectTimeoutMs?: number;
}): Promise<RawPublisher> {
  const { codec } = options;
  const rtcpFeedback = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'goog-remb' }];
  const pc = new RTCPeerConnection({
    codecs: { video: [videoCodecParameters(codec, rtcpFeedback, codec === 'VP8' ? 96 : 102)], audio: [opusParameters()] },
    headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
    iceAdditionalHostAddresses: ['127.0.0.1'],
    bundlePolicy: 'max-bundle',
  });
  const transceiver = pc.addTransceiver('video', { direction: 'sendonly' });
  const dataChannel = pc.createDataChannel('control');
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  const url = `${options.baseUrl}${options.path ?? '/whip'}`;
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription!.sdp });
  const body = await res.text();
  if (res.status !== 201) {
    await pc.close();
    throw new Error(`WHIP POST ${url} → ${res.status}: ${body}`);
  }
  const location = new URL(res.headers.get('location') ?? '', url).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  await new Promise<void>((resolve, reject) => {
    if (pc.connectionState === 'connected') return resolve();
    const timer = setTimeout(() => reject(new Error('raw publisher did not connect')), options.connectTimeoutMs ?? 10_000);
    const sub = pc.connectionStateChange.subscribe((s) => {
      if (s !== 'connected') return;
      clearTimeout(timer);
      sub.unSubscribe();
      resolve();
    });
  });
  const sender = transceiver.sender;
  const dtls = transceiver.dtlsTransport as unknown as DtlsInternals;
  const payloadType = sender.codec?.payloadType ?? (codec === 'VP8' ? 96 : 102);
  const keyframeRequests: number[] = [];
  const rtcpSub = dtls.onRtcp.subscribe((rtcp) => {
    if (isKeyframeRequest(rtcp, sender.ssrc)) keyframeRequests.push(performance.now());
  });
  const packetizer = codec === 'VP8' ? new Vp8Packetizer({ maxPayloadSize: 1200 }) : new H264Packetizer({ maxPayloadSize: 1200 });
  let closed = false;
  return {
    pc,
    location,
    sessionId: new URL(location).pathname.split('/').pop()!,
    codec,
    ssrc: sender.ssrc,
    payloadType,
    dataChannel,
    keyframeRequests,
    sendPicture(picture, timestamp) {
      const packets =
        packetizer instanceof H264Packetizer
          ? packetizer.packetize(picture.data, timestamp >>> 0, { isKeyframe: picture.keyframe })
          : packetizer.packetize(picture.data, timestamp >>> 0);
      for (const p of packets) void sender.sendRtp(p).catch(() => undefined);
      return packets.length;
    },
    sendRawRtp(h, payload) {
      if (closed) return;
      const header = new RtpHeader({
        sequenceNumber: h.sequenceNumber & 0xffff,
        timestamp: h.timestamp >>> 0,
        marker: h.marker,
        payloadType: (h.payloadType ?? payloadType) & 0x7f,
        ssrc: (h.ssrc ?? sender.ssrc) >>> 0,
      });
      void dtls.sendRtp(payload, header).catch(() => undefined);
    },
    sendRawRtcp(compound) {
      if (closed) return false;
      let enc: Buffer;
      try {
        enc = dtls.srtcp.encrypt(compound);
      } catch {
        return false;
      }
      void dtls.iceTransport.connection.send(enc).catch(() => undefined);
      return true;
    },
    sendRawDatagram(bytes) {
      if (!closed) void dtls.iceTransport.connection.send(bytes).catch(() => undefined);
    },
    async close({ deleteSession = true } = {}) {
      if (closed) return;
      closed = true;
      rtcpSub.unSubscribe();
      if (deleteSession) await fetch(location, { method: 'DELETE' }).catch(() => undefined);
      await pc.close();
    },
  };
}

/** A valid RTP packet for the publisher's codec, for mutating. */
export function samplePackets(codec: VideoCodecName, picture: EncodedPicture, timestamp: number): RtpPacket[] {
  const packetizer = codec === 'VP8' ? new Vp8Packetizer({ maxPayloadSize: 1200 }) : new H264Packetizer({ maxPayloadSize: 1200 });
  return packetizer instanceof H264Packetizer
    ? packetizer.packetize(picture.data, timestamp >>> 0, { isKeyframe: picture.keyframe })
    : packetizer.packetize(picture.data, timestamp >>> 0);
}

/** Encode `frames` (one picture each, no lag); a keyframe every `keyframeEvery` frames, starting with the first. */
export async function encodePictures(
  codec: VideoCodecName,
  frames: readonly RgbImage[],
  keyframeEvery = Number.POSITIVE_INFINITY,
): Promise<EncodedPicture[]> {
  const { width, height } = frames[0]!;
  const encoder = await VideoEncoder.create({ codec, width, height, maxBitrateKbps: 1500, fps: 15 });
  try {
    const out: EncodedPicture[] = [];
    for (let i = 0; i < frames.length; i++) {
      const pictures = await encoder.encode(frames[i]!, i * 6000, i % keyframeEvery === 0);
      if (pictures.length !== 1) throw new Error(`encoder returned ${pictures.length} pictures for frame ${i}; expected 1`);
      out.push(pictures[0]!);
    }
    return out;
  } finally {
    await encoder.close();
  }
}

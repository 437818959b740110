// One publisher's video ingress, egress's counterpart: RTP packets in, model-resolution RGB frames out —
// depacketize (a frame's packets assembled) → decode → cover-scale to the model's size — with each
// stage's time on the frame. Owns its decoder and scaler; close() frees them. When it needs a keyframe
// (start, a lost packet, a decode error, a decoder that fell behind) it asks its owner, which sends PLI.
import type { RtpPacket } from 'werift';
import { nowMs } from '../frame/clock.js';
import type { Log } from '../frame/log.js';
import { recordStage, type VideoFrame } from '../frame/video-frame.js';
import { FrameAssembler, type AssembledFrame } from './rtp-depacketizer.js';
import { PictureScaler, VideoDecoder, type VideoCodecName } from './video-codec.js';

/** Encoded frames waiting to be decoded; beyond this the decoder is behind and we restart from a keyframe. */
const MAX_DECODE_BACKLOG = 8;

export interface VideoIngressOptions {
  codec: VideoCodecName;
  /** Model resolution: input is cover-cropped and scaled to it. */
  target: { width: number; height: number };
  onFrame(frame: VideoFrame): void;
  /** The ingress needs a keyframe (the owner rate-limits and sends PLI). */
  onKeyframeNeeded(reason: string): void;
  log?: Log;
}

export interface VideoIngressStats {
  packetsIn: number;
  bytesIn: number;
  framesAssembled: number;
  framesLost: number;
  /** Complete frames dropped because the decoder needs a keyframe first (after a loss, a backlog or at the start). */
  framesSkippedAwaitingKeyframe: number;
  framesDecoded: number;
  decodeErrors: number;
  malformedPackets: number;
  paddingPackets: number;
  /** Decoded input frames per second over the last ~2 s. */
  inputFps: number;
}

export class VideoIngress {
  private readonly assembler: FrameAssembler;
  private closed = false;
  private seq = 0;
  private decodeBacklog = 0;
  private lastDecodeWarnMs = -Infinity;
  private readonly decodedTimes: number[] = [];
  private readonly counters = { packetsIn: 0, bytesIn: 0, framesDecoded: 0, decodeErrors: 0 };

  private constructor(
    private readonly options: VideoIngressOptions,
    private readonly decoder: VideoDecoder,
    private readonly scaler: PictureScaler,
  ) {
    this.assembler = new FrameAssembler(options.codec, (reason) => options.onKeyframeNeeded(reason));
  }

  static async create(options: VideoIngressOptions): Promise<VideoIngress> {
    const decoder = await VideoDecoder.create(options.codec);
    return new VideoIngress(options, decoder, new PictureScaler(options.target));
  }

  /** One video RTP packet, as it arrived. */
  push(rtp: RtpPacket, arrivalMs: number): void {
    if (this.closed) return;
    this.counters.packetsIn++;
    this.counters.bytesIn += rtp.payload.length;
    if (this.counters.packetsIn === 1) this.options.onKeyframeNeeded('start');
    const frames = this.assembler.push(
      { sequenceNumber: rtp.header.sequenceNumber, timestamp: rtp.header.timestamp, marker: rtp.header.marker, payload: rtp.payload },
      arrivalMs,
    );
    for (const f of frames) this.decode(f);
  }

  private decode(au: AssembledFrame): void {
    if (this.closed) return;
    if (this.decodeBacklog >= MAX_DECODE_BACKLOG) {
      // The decoder cannot keep up: skipping an inter frame breaks the chain, so restart at a keyframe.
      this.assembler.requireKeyframe();
      this.options.onKeyframeNeeded('decoder backlog');
      return;
    }
    this.decodeBacklog++;
    void this.decodeAndScale(au, this.seq++).finally(() => this.decodeBacklog--);
  }

  private async decodeAndScale(au: AssembledFrame, frameSeq: number): Promise<void> {
    const t0 = nowMs();
    try {
      const pictures = await this.decoder.decode(au.data, au.keyframe);
      const t1 = nowMs();
      const picture = pictures.pop();
      for (const p of pictures) p.free();
      if (!picture || this.closed) {
        picture?.free();
        return;
      }
      this.counters.framesDecoded++;
      this.decodedTimes.push(t1);
      if (this.decodedTimes.length > 120) this.decodedTimes.shift();
      let image;
      try {
        image = await this.scaler.toRgb(picture);
      } finally {
        picture.free();
      }
      const t2 = nowMs();
      if (this.closed) return;
      const frame: VideoFrame = { image, rtpTimestamp: au.rtpTimestamp, arrivalMs: au.lastPacketMs, seq: frameSeq, stages: [] };
      recordStage(frame, 'depacketize', au.firstPacketMs, au.lastPacketMs);
      recordStage(frame, 'decode', t0, t1);
      recordStage(frame, 'scale', t1, t2);
      this.options.onFrame(frame);
    } catch (error) {
      if (this.closed) return;
      this.counters.decodeErrors++;
      this.assembler.requireKeyframe();
      this.options.onKeyframeNeeded('decode error');
      // Garbage input fails every frame: log the first failure, then at most one line per 5 s.
      const now = nowMs();
      if (now - this.lastDecodeWarnMs > 5000) {
        this.lastDecodeWarnMs = now;
        this.options.log?.warn(
          { err: (error as Error).message, codec: this.options.codec, decodeErrors: this.counters.decodeErrors },
          'decode failed; keyframe requested',
        );
      }
    }
  }

  stats(): VideoIngressStats {
    const a = this.assembler.stats;
    const now = nowMs();
    const recent = this.decodedTimes.filter((t) => now - t < 2000);
    return {
      ...this.counters,
      framesAssembled: a.framesAssembled,
      framesLost: a.framesLost,
      framesSkippedAwaitingKeyframe: a.framesSkippedAwaitingKeyframe,
      malformedPackets: a.malformedPackets,
      paddingPackets: a.paddingPackets,
      inputFps: recent.length / 2,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.decoder.close(), this.scaler.close()]);
  }
}

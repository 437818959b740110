// One stream's egress: every restyled frame is encoded ONCE per codec and packetized once, and the same RTP
// packets go to every consumer of that codec (WHEP viewers, and a browser publisher's own return path).
// Consumers differ only in what werift's sender rewrites per packet (SSRC, payload type, header extensions,
// SRTP), so adding a viewer costs network I/O, never another encoder. Owns the encoders; close() frees them.
import { H264Packetizer, Vp8Packetizer, type RtpPacket } from 'werift';
import { nowMs } from '../frame/clock.js';
import type { Log } from '../frame/log.js';
import { recordStage, type VideoFrame } from '../frame/video-frame.js';
import { VideoEncoder, type EncodedPicture, type EncoderOptions, type VideoCodecName } from './video-codec.js';
import type { RgbImage } from '../frame/video-frame.js';

/** Something that sends a stream's packets to one peer. */
export interface RtpConsumer {
  readonly codec: VideoCodecName;
  /** One frame's packets, shared by every consumer of the codec: never mutate them (werift's sendRtp clones first). */
  sendPackets(packets: readonly RtpPacket[]): void;
  /** Set by the egress the consumer joins: call it when the peer asks for a keyframe (PLI/FIR). */
  keyframeRequested?: () => void;
}

/** What the egress needs of an encoder (stream/video-codec.ts VideoEncoder is the real one). */
export interface FrameEncoder {
  encode(image: RgbImage, rtpTimestamp: number, forceKeyframe: boolean): Promise<EncodedPicture[]>;
  close(): Promise<void>;
}

/** Opens one codec's encoder; injectable (a wrapper that fails on cue is how the error path is tested). */
export type OpenEncoder = (options: EncoderOptions) => Promise<FrameEncoder>;

export const openVideoEncoder: OpenEncoder = (options) => VideoEncoder.create(options);

export interface EgressOptions {
  width: number;
  height: number;
  maxBitrateKbps: number;
  /** A frame's first packet went out (once per frame, whichever codec got there first); 'encode'/'packetize' are recorded. */
  onSent?(frame: VideoFrame, firstPacketSentMs: number): void;
  /**
   * A codec's encoder failed MAX_CONSECUTIVE_ENCODE_ERRORS times in a row, re-opened in between: its
   * consumers get no more video. The owner should end the stream with this reason.
   */
  onFailed?(reason: string): void;
  logger?: Log;
  /** Default: the FFmpeg encoder (openVideoEncoder). */
  openEncoder?: OpenEncoder;
}

export interface EgressStats {
  consumers: number;
  /** Per codec with at least one consumer: one encoder each. */
  codecs: Record<
    string,
    {
      consumers: number;
      framesEncoded: number;
      keyframesForced: number;
      framesNotSent: number;
      packetsOut: number;
      encodeErrors: number;
      encoderReopens: number;
    }
  >;
}

/**
 * Forced keyframes are rate-limited: each costs several times an inter frame, and a burst of joins or PLIs
 * must not turn the stream into all-keyframes. A request inside the window is deferred, never lost.
 */
export const KEYFRAME_MIN_INTERVAL_MS = 250;

/**
 * An encode error re-opens the codec's encoder (a fresh context, starting with a keyframe); this many errors
 * in a row, with no frame encoded in between, mean re-opening does not help and the codec's branch gives up.
 */
export const MAX_CONSECUTIVE_ENCODE_ERRORS = 3;

export class VideoEgress {
  private readonly branches = new Map<VideoCodecName, CodecBranch>();
  private readonly reported = new WeakSet<VideoFrame>();
  private closed = false;

  constructor(private readonly options: EgressOptions) {}

  /** Start sending to `consumer`; its codec's encoder is opened if it is the first, and a keyframe is forced for it. */
  add(consumer: RtpConsumer): void {
    if (this.closed) return;
    let branch = this.branches.get(consumer.codec);
    if (!branch) {
      branch = new CodecBranch(consumer.codec, this.options, (frame) => this.claim(frame));
      branch.onFailed = (reason) => {
        if (this.closed) return;
        try {
          this.options.onFailed?.(reason);
        } catch (error) {
          this.options.logger?.warn({ err: (error as Error).message }, 'onFailed threw');
        }
      };
      this.branches.set(consumer.codec, branch);
    }
    branch.consumers.add(consumer);
    consumer.keyframeRequested = () => branch.requestKeyframe();
    // A newcomer cannot decode until the next keyframe (the periodic one is 10 s away).
    branch.requestKeyframe();
  }

  /** Stop sending to `consumer`; the last consumer of a codec closes that codec's encoder. */
  remove(consumer: RtpConsumer): Promise<void> {
    const branch = this.branches.get(consumer.codec);
    consumer.keyframeRequested = undefined;
    if (!branch || !branch.consumers.delete(consumer) || branch.consumers.size > 0) return Promise.resolve();
    this.branches.delete(consumer.codec);
    return branch.close();
  }

  /** Encode and send one restyled frame to every consumer. Never blocks: a busy encoder keeps only the latest. */
  send(frame: VideoFrame): void {
    if (this.closed) return;
    for (const branch of this.branches.values()) branch.send(frame);
  }

  get consumerCount(): number {
    let n = 0;
    for (const b of this.branches.values()) n += b.consumers.size;
    return n;
  }

  stats(): EgressStats {
    const codecs: EgressStats['codecs'] = {};
    for (const [codec, b] of this.branches) codecs[codec] = { consumers: b.consumers.size, ...b.counters };
    return { consumers: this.consumerCount, codecs };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const branches = [...this.branches.values()];
    this.branches.clear();
    await Promise.all(branches.map((b) => b.close()));
  }

  /** True for the first branch to send `frame`: it records the frame's stages and reports it. */
  private claim(frame: VideoFrame): boolean {
    if (this.reported.has(frame)) return false;
    this.reported.add(frame);
    return true;
  }
}

/** One codec's encoder and packetizer, and the consumers that negotiated that codec. */
class CodecBranch {
  readonly consumers = new Set<RtpConsumer>();
  readonly counters = { framesEncoded: 0, keyframesForced: 0, framesNotSent: 0, packetsOut: 0, encodeErrors: 0, encoderReopens: 0 };
  onFailed: ((reason: string) => void) | undefined;
  private encoder: FrameEncoder | undefined;
  private starting: Promise<FrameEncoder | undefined>;
  private reopening: Promise<void> | undefined;
  private consecutiveErrors = 0;
  private failed = false;
  private readonly packetizer: Vp8Packetizer | H264Packetizer;
  private busy = false;
  private pending: VideoFrame | null = null;
  private keyframeWanted = true;
  private lastKeyframeMs = -Infinity;
  private closed = false;

  constructor(
    readonly codec: VideoCodecName,
    private readonly options: EgressOptions,
    /** True when this branch is the first to send `frame` (with two codecs, the second one's timing stays in its counters). */
    private readonly claim: (frame: VideoFrame) => boolean,
  ) {
    this.packetizer = codec === 'VP8' ? new Vp8Packetizer({ maxPayloadSize: 1200 }) : new H264Packetizer({ maxPayloadSize: 1200 });
    // Opened now, not on the first frame, so the first restyled frame does not pay for encoder start-up.
    this.starting = this.open();
  }

  private open(): Promise<FrameEncoder | undefined> {
    const { codec, options } = this;
    return (options.openEncoder ?? openVideoEncoder)({
      codec,
      width: options.width,
      height: options.height,
      maxBitrateKbps: options.maxBitrateKbps,
    }).then(
      async (enc) => {
        if (this.closed) {
          await enc.close();
          return undefined;
        }
        this.encoder = enc;
        return enc;
      },
      (error: Error) => {
        options.logger?.warn({ err: error.message, codec }, 'cannot open encoder; this codec gets no video');
        return undefined;
      },
    );
  }

  /**
   * After an encode error: close the encoder (its state may be corrupt) and open a fresh one, whose first
   * frame is a keyframe for every consumer. After MAX_CONSECUTIVE_ENCODE_ERRORS in a row, give up and report.
   */
  private async recover(error: Error): Promise<void> {
    this.counters.encodeErrors++;
    this.consecutiveErrors++;
    if (this.consecutiveErrors >= MAX_CONSECUTIVE_ENCODE_ERRORS) {
      this.failed = true;
      const reason = `${this.codec} encoder failed ${this.consecutiveErrors} times in a row (last: ${error.message})`;
      const log = this.options.logger;
      const line = { err: error.message, codec: this.codec, encodeErrors: this.counters.encodeErrors };
      if (log?.error) log.error(line, 'encoder keeps failing; this codec gets no video');
      else log?.warn(line, 'encoder keeps failing; this codec gets no video');
      this.onFailed?.(reason);
      return;
    }
    this.options.logger?.warn(
      { err: error.message, codec: this.codec, encodeErrors: this.counters.encodeErrors },
      'encode failed; re-opening the encoder',
    );
    this.reopening = (async () => {
      const old = this.encoder;
      this.encoder = undefined;
      await old?.close();
      if (this.closed) return;
      this.counters.encoderReopens++;
      this.keyframeWanted = true;
      this.lastKeyframeMs = -Infinity;
      this.starting = this.open();
      if ((await this.starting) === undefined && !this.closed) {
        this.failed = true;
        this.onFailed?.(`${this.codec} encoder could not be re-opened after an encode error (${error.message})`);
      }
    })();
    await this.reopening;
  }

  requestKeyframe(): void {
    this.keyframeWanted = true;
  }

  send(frame: VideoFrame): void {
    if (this.closed || this.failed) return;
    if (this.busy) {
      // Latest frame wins here too: a waiting frame is replaced, never queued behind.
      if (this.pending) this.counters.framesNotSent++;
      this.pending = frame;
      return;
    }
    this.busy = true;
    void this.encodeAndSend(frame).finally(() => {
      this.busy = false;
      const next = this.pending;
      this.pending = null;
      if (next && !this.closed) this.send(next);
    });
  }

  private async encodeAndSend(frame: VideoFrame): Promise<void> {
    try {
      const encoder = this.encoder ?? (await this.starting);
      if (!encoder || this.closed) return;
      const t0 = nowMs();
      const keyframe = this.keyframeWanted && t0 - this.lastKeyframeMs >= KEYFRAME_MIN_INTERVAL_MS;
      if (keyframe) {
        this.keyframeWanted = false;
        this.lastKeyframeMs = t0;
        this.counters.keyframesForced++;
      }
      const pictures = await encoder.encode(frame.image, frame.rtpTimestamp, keyframe);
      this.consecutiveErrors = 0;
      const t1 = nowMs();
      if (this.closed) return;
      let firstSentMs: number | null = null;
      for (const picture of pictures) {
        const packets =
          this.packetizer instanceof H264Packetizer
            ? this.packetizer.packetize(picture.data, frame.rtpTimestamp >>> 0, { isKeyframe: picture.keyframe })
            : this.packetizer.packetize(picture.data, frame.rtpTimestamp >>> 0);
        this.counters.packetsOut += packets.length;
        for (const consumer of this.consumers) consumer.sendPackets(packets);
        firstSentMs ??= nowMs();
        this.counters.framesEncoded++;
      }
      const t2 = nowMs();
      if (firstSentMs === null) {
        this.counters.framesNotSent++;
        return;
      }
      if (this.claim(frame)) {
        recordStage(frame, 'encode', t0, t1);
        recordStage(frame, 'packetize', t1, t2);
        try {
          this.options.onSent?.(frame, firstSentMs);
        } catch (error) {
          this.options.logger?.warn({ err: (error as Error).message }, 'onSent threw');
        }
      }
    } catch (error) {
      this.counters.framesNotSent++;
      if (!this.closed) await this.recover(error instanceof Error ? error : new Error(String(error)));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending = null;
    this.consumers.clear();
    await this.reopening;
    const encoder = this.encoder ?? (await this.starting);
    await encoder?.close();
  }
}

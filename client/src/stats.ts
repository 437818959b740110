// Measurements for the stats overlay: frame rates of <video> elements (requestVideoFrameCallback),
// from the peer connection the encoder's frame rate and the ICE round-trip time, and glass-to-glass latency.

import { GlassToGlassMeter } from './glass-to-glass.js';

/** Counts presented frames of a <video> over a sliding one-second window. */
export class FrameRateMeter {
  private times: number[] = [];
  private handle = 0;
  private stopped = false;

  constructor(private readonly video: HTMLVideoElement) {
    if (typeof video.requestVideoFrameCallback === 'function') {
      const onFrame = (now: number): void => {
        if (this.stopped) return;
        this.times.push(now);
        this.handle = video.requestVideoFrameCallback(onFrame);
      };
      this.handle = video.requestVideoFrameCallback(onFrame);
    }
  }

  /** Frames per second over the last second, or undefined where the browser cannot tell. */
  get fps(): number | undefined {
    if (typeof this.video.requestVideoFrameCallback !== 'function') return undefined;
    const now = performance.now();
    this.times = this.times.filter((t) => now - t <= 1000);
    return this.times.length;
  }

  stop(): void {
    this.stopped = true;
    if (typeof this.video.cancelVideoFrameCallback === 'function') this.video.cancelVideoFrameCallback(this.handle);
  }
}

export interface TransportStats {
  /** Frames per second the encoder is sending. */
  sentFps?: number;
  /** Frames per second arriving from the server (before display). */
  receivedFps?: number;
  roundTripMs?: number;
  sendResolution?: string;
  codec?: string;
}

export async function readTransportStats(pc: RTCPeerConnection): Promise<TransportStats> {
  const report = await pc.getStats();
  const result: TransportStats = {};
  const codecs = new Map<string, string>();
  report.forEach((s: Record<string, unknown>) => {
    if (s.type === 'codec' && typeof s.mimeType === 'string') codecs.set(String(s.id), s.mimeType.replace(/^video\//, ''));
  });
  report.forEach((s: Record<string, unknown>) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') {
      if (typeof s.framesPerSecond === 'number') result.sentFps = s.framesPerSecond;
      if (typeof s.frameWidth === 'number') result.sendResolution = `${s.frameWidth}×${s.frameHeight}`;
      if (typeof s.codecId === 'string') result.codec = codecs.get(s.codecId);
    } else if (s.type === 'inbound-rtp' && s.kind === 'video') {
      if (typeof s.framesPerSecond === 'number') result.receivedFps = s.framesPerSecond;
    } else if (s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded') {
      if (typeof s.currentRoundTripTime === 'number') result.roundTripMs = s.currentRoundTripTime * 1000;
    }
  });
  return result;
}

/** Why glass-to-glass cannot be measured in this browser (the overlay's tooltip), or undefined. */
export function glassToGlassUnsupported(output: HTMLVideoElement): string | undefined {
  if (typeof RTCRtpScriptTransform !== 'function') {
    return 'This browser has no WebRTC Encoded Transform (RTCRtpScriptTransform): outgoing frames cannot be timed.';
  }
  if (typeof output.requestVideoFrameCallback !== 'function') {
    return 'This browser has no requestVideoFrameCallback: displayed frames cannot be timed.';
  }
  return undefined;
}

/** Displayed frames without an RTP timestamp before we conclude the browser does not report it. */
const FRAMES_BEFORE_NO_RTP = 30;

/**
 * Camera-to-screen latency on one clock (the page's): an encoded transform on the sender reports each
 * outgoing frame's RTP timestamp, the camera preview's requestVideoFrameCallback its capture times, and
 * the output video's the RTP timestamp, receive and expected display time of each restyled frame, which
 * the server sends with its input's RTP timestamp. GlassToGlassMeter matches them.
 */
export class GlassToGlassProbe {
  readonly meter = new GlassToGlassMeter();
  private reason: string | undefined;
  private worker: Worker | undefined;
  private inputHandle = 0;
  private outputHandle = 0;
  private withoutRtp = 0;
  private stopped = false;

  constructor(
    sender: RTCRtpSender,
    private readonly input: HTMLVideoElement,
    private readonly output: HTMLVideoElement,
  ) {
    this.reason = glassToGlassUnsupported(output);
    if (this.reason) return;
    try {
      this.worker = new Worker(new URL('./glass-worker.js', import.meta.url), { type: 'module' });
      this.worker.onmessage = (e: MessageEvent<[number, number]>) => {
        this.meter.onSent(e.data[0], e.data[1] - performance.timeOrigin);
      };
      sender.transform = new RTCRtpScriptTransform(this.worker, { side: 'send' });
    } catch (err) {
      this.worker?.terminate();
      this.reason = `The sender's encoded transform could not be set up (${err instanceof Error ? err.message : String(err)}).`;
      return;
    }
    const onInput = (_now: number, metadata: VideoFrameCallbackMetadata): void => {
      if (this.stopped) return;
      if (metadata.captureTime !== undefined) this.meter.onCapture(metadata.captureTime);
      this.inputHandle = input.requestVideoFrameCallback(onInput);
    };
    const onOutput = (_now: number, metadata: VideoFrameCallbackMetadata): void => {
      if (this.stopped) return;
      if (metadata.rtpTimestamp === undefined) {
        if (++this.withoutRtp >= FRAMES_BEFORE_NO_RTP && this.meter.matchedFrames === 0) {
          this.reason = 'This browser does not report the RTP timestamp of displayed frames: they cannot be matched to the camera’s.';
        }
      } else {
        this.meter.onDisplayed(metadata.rtpTimestamp, metadata.receiveTime ?? NaN, metadata.expectedDisplayTime);
      }
      this.outputHandle = output.requestVideoFrameCallback(onOutput);
    };
    this.inputHandle = input.requestVideoFrameCallback(onInput);
    this.outputHandle = output.requestVideoFrameCallback(onOutput);
  }

  /** Why it cannot be measured here, or undefined while it can. */
  get unsupported(): string | undefined {
    return this.reason;
  }

  stop(): void {
    this.stopped = true;
    this.worker?.terminate();
    if (typeof this.input.cancelVideoFrameCallback === 'function') this.input.cancelVideoFrameCallback(this.inputHandle);
    if (typeof this.output.cancelVideoFrameCallback === 'function') this.output.cancelVideoFrameCallback(this.outputHandle);
  }
}

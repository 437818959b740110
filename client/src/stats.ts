// Measurements for the stats overlay: frame rates of <video> elements (requestVideoFrameCallback)
// and, from the peer connection, the encoder's frame rate and the ICE round-trip time.

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

// Glass-to-glass latency from one page's clock: when each outgoing frame left the encoder (by its RTP
// timestamp), when its camera frame was captured, and when the restyled frame carrying the same RTP
// timestamp was received and shown. Pure code with fixed-size buffers (no DOM), so it is unit-tested in Node.

/** One displayed frame matched to its own capture. Times are the page's performance.now() milliseconds. */
export interface GlassSample {
  rtpTimestamp: number;
  /** Camera capture (estimated from the RTP clock, see CaptureClock), or the encoder output time when unknown. */
  captureMs: number;
  /** True when captureMs is a capture time, false when it fell back to the encoder output time. */
  fromCapture: boolean;
  /** The encoded frame passed the sender's transform (then it is packetized and sent). */
  sentMs: number;
  /** The restyled frame's last packet arrived (rVFC receiveTime); NaN where the browser does not say. */
  receiveMs: number;
  /** The compositor's expected display time of the restyled frame (rVFC expectedDisplayTime). */
  displayMs: number;
}

export interface GlassSummary {
  /** Samples in the window. */
  count: number;
  /** Of all displayed frames so far, the fraction matched to a sent frame by RTP timestamp. */
  matchedRatio: number;
  displayed: number;
  matched: number;
  /** Whether captures are calibrated (else glass-to-glass starts at the encoder output). */
  fromCapture: boolean;
  glassP50: number;
  glassP95: number;
  captureToSentP50: number;
  sentToReceiveP50: number;
  receiveToDisplayP50: number;
}

/** Nearest-rank percentile (as bench/e2e-report's `distribution`) of `values[0..n)`, sorted in place. */
export function percentileOfSorted(sorted: ArrayLike<number>, n: number, p: number): number {
  if (n === 0) return NaN;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
}

/**
 * Values with their times in a ring; percentiles over those newer than `windowMs`. Sorting happens in a
 * preallocated scratch array, so reading percentiles allocates nothing.
 */
export class MovingPercentiles {
  private readonly times: Float64Array;
  private readonly values: Float64Array;
  private readonly scratch: Float64Array;
  private next = 0;
  private size = 0;

  constructor(
    readonly capacity: number,
    readonly windowMs: number,
  ) {
    this.times = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.scratch = new Float64Array(capacity);
  }

  push(timeMs: number, value: number): void {
    this.times[this.next] = timeMs;
    this.values[this.next] = value;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** Sorts the in-window values into the scratch array; returns how many there are. */
  private collect(nowMs: number): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) {
      if (nowMs - this.times[i]! <= this.windowMs && Number.isFinite(this.values[i]!)) this.scratch[n++] = this.values[i]!;
    }
    this.scratch.subarray(0, n).sort();
    return n;
  }

  count(nowMs: number): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) if (nowMs - this.times[i]! <= this.windowMs) n++;
    return n;
  }

  percentile(nowMs: number, p: number): number {
    return percentileOfSorted(this.scratch, this.collect(nowMs), p);
  }

  /** Two percentiles from one sort. */
  percentiles(nowMs: number, p: number, q: number): [number, number] {
    const n = this.collect(nowMs);
    return [percentileOfSorted(this.scratch, n, p), percentileOfSorted(this.scratch, n, q)];
  }
}

const RTP_WRAP = 2 ** 32;
/** Video RTP clock: 90 kHz. */
const RTP_TICKS_PER_MS = 90;

/** Extends a 32-bit RTP timestamp to the unwrapped value nearest `previous` (undefined: take it as is). */
export function unwrapRtp(previous: number | undefined, rtp32: number): number {
  if (previous === undefined) return rtp32;
  const base = previous - (previous % RTP_WRAP);
  let best = base + rtp32;
  for (const candidate of [best - RTP_WRAP, best + RTP_WRAP]) {
    if (Math.abs(candidate - previous) < Math.abs(best - previous)) best = candidate;
  }
  return best;
}

/**
 * The offset between a sender's RTP clock and the page's capture clock. WebRTC stamps a video frame with
 * 90 × its capture time in ms (+ a random per-stream offset), so rtpMs − captureMs is one constant. Each
 * sent frame votes for its difference to every capture that preceded its encoding by at most
 * `maxDelayMs`; the true offset is one most frames agree on within `toleranceMs`. A camera with very
 * regular frame intervals makes "each frame paired with the capture before it" agree as well (one frame
 * interval larger), so among offsets with nearly the best support the smallest — the latest capture that
 * still precedes encoding — wins. That is right whenever encoding takes less than a frame interval.
 * Returns the median of the winning votes and the share of sent frames supporting it, or undefined.
 */
export function estimateRtpCaptureOffset(
  sent: { rtpMs: ArrayLike<number>; sentMs: ArrayLike<number>; count: number },
  captures: { ms: ArrayLike<number>; count: number },
  options: { maxDelayMs?: number; toleranceMs?: number; minSupport?: number; minFrames?: number } = {},
): { offsetMs: number; support: number } | undefined {
  const { maxDelayMs = 250, toleranceMs = 1, minSupport = 0.5, minFrames = 10 } = options;
  if (sent.count < minFrames || captures.count < minFrames) return undefined;
  const votes: number[] = [];
  const voter: number[] = [];
  for (let i = 0; i < sent.count; i++) {
    for (let j = 0; j < captures.count; j++) {
      const delay = sent.sentMs[i]! - captures.ms[j]!;
      if (delay >= 0 && delay <= maxDelayMs) {
        votes.push(sent.rtpMs[i]! - captures.ms[j]!);
        voter.push(i);
      }
    }
  }
  const order = votes.map((_, k) => k).sort((a, b) => votes[a]! - votes[b]!);
  // For each vote (as the low end of a window 2 × tolerance wide): how many distinct frames agree.
  const seenAt = new Int32Array(sent.count).fill(-1);
  const support = new Int32Array(order.length);
  const windowEnd = new Int32Array(order.length);
  let hi = 0;
  let best = 0;
  for (let lo = 0; lo < order.length; lo++) {
    while (hi < order.length && votes[order[hi]!]! - votes[order[lo]!]! <= 2 * toleranceMs) hi++;
    let distinct = 0;
    for (let k = lo; k < hi; k++) {
      const v = voter[order[k]!]!;
      if (seenAt[v] !== lo) {
        seenAt[v] = lo;
        distinct++;
      }
    }
    support[lo] = distinct;
    windowEnd[lo] = hi;
    best = Math.max(best, distinct);
  }
  if (best === 0 || best / sent.count < minSupport) return undefined;
  // The smallest offset with nearly the best support; then the best-supported window in its cluster.
  let lo = 0;
  while (support[lo]! < 0.8 * best) lo++;
  let pick = lo;
  for (let k = lo; k < order.length && votes[order[k]!]! - votes[order[lo]!]! <= 2 * toleranceMs; k++) {
    if (support[k]! > support[pick]!) pick = k;
  }
  const winners = order.slice(pick, windowEnd[pick]).map((k) => votes[k]!);
  return { offsetMs: winners[Math.floor(winners.length / 2)]!, support: support[pick]! / sent.count };
}

export interface GlassMeterOptions {
  /** Sent frames remembered for matching (a few seconds at 30 fps is plenty: frames come back in < 1 s). */
  sentCapacity?: number;
  /** Moving window of the overlay's percentiles. */
  windowMs?: number;
  windowCapacity?: number;
  /** How often the RTP-to-capture offset is re-estimated. */
  recalibrateMs?: number;
}

/**
 * Collects the three event streams of one session and turns displayed frames into glass-to-glass samples:
 * onSent (sender transform: RTP timestamp and time), onCapture (the camera preview's captureTime) and
 * onDisplayed (the output video's RTP timestamp, receive and expected display time).
 */
export class GlassToGlassMeter {
  private readonly sentCapacity: number;
  private readonly sentRtp32: Float64Array;
  private readonly sentRtpMs: Float64Array;
  private readonly sentMs: Float64Array;
  private readonly slotOf = new Map<number, number>();
  private sentNext = 0;
  private sentSize = 0;
  private lastRtp: number | undefined;

  private readonly captures: Float64Array;
  private captureNext = 0;
  private captureSize = 0;
  private offsetMs: number | undefined;
  private calibratedAtMs = -Infinity;
  private readonly recalibrateMs: number;

  private readonly glass: MovingPercentiles;
  private readonly captureToSent: MovingPercentiles;
  private readonly sentToReceive: MovingPercentiles;
  private readonly receiveToDisplay: MovingPercentiles;
  private displayedCount = 0;
  private matchedCount = 0;

  /** Called with each matched sample (the page keeps a log of them only when asked to, for the benchmark). */
  onSample: ((sample: GlassSample) => void) | undefined;

  constructor(options: GlassMeterOptions = {}) {
    const { sentCapacity = 256, windowMs = 5000, windowCapacity = 512, recalibrateMs = 2000 } = options;
    this.sentCapacity = sentCapacity;
    this.sentRtp32 = new Float64Array(sentCapacity);
    this.sentRtpMs = new Float64Array(sentCapacity);
    this.sentMs = new Float64Array(sentCapacity);
    this.captures = new Float64Array(sentCapacity);
    this.recalibrateMs = recalibrateMs;
    this.glass = new MovingPercentiles(windowCapacity, windowMs);
    this.captureToSent = new MovingPercentiles(windowCapacity, windowMs);
    this.sentToReceive = new MovingPercentiles(windowCapacity, windowMs);
    this.receiveToDisplay = new MovingPercentiles(windowCapacity, windowMs);
  }

  /** An encoded frame left the encoder with this (32-bit) RTP timestamp at `timeMs`. */
  onSent(rtp32: number, timeMs: number): void {
    if (this.slotOf.has(rtp32)) return; // a frame's layers/retransmits share one timestamp: keep the first
    const slot = this.sentNext;
    if (this.sentSize === this.sentCapacity) this.slotOf.delete(this.sentRtp32[slot]!);
    const rtp = unwrapRtp(this.lastRtp, rtp32);
    this.lastRtp = rtp;
    this.sentRtp32[slot] = rtp32;
    this.sentRtpMs[slot] = rtp / RTP_TICKS_PER_MS;
    this.sentMs[slot] = timeMs;
    this.slotOf.set(rtp32, slot);
    this.sentNext = (slot + 1) % this.sentCapacity;
    this.sentSize = Math.min(this.sentSize + 1, this.sentCapacity);
  }

  /** The camera delivered a frame captured at `captureMs` (the preview's rVFC captureTime). */
  onCapture(captureMs: number): void {
    this.captures[this.captureNext] = captureMs;
    this.captureNext = (this.captureNext + 1) % this.captures.length;
    this.captureSize = Math.min(this.captureSize + 1, this.captures.length);
  }

  /**
   * A restyled frame with this RTP timestamp is shown at `displayMs` (received at `receiveMs`, NaN if
   * unknown). Returns the sample, or undefined when no sent frame has that timestamp.
   */
  onDisplayed(rtp32: number, receiveMs: number, displayMs: number): GlassSample | undefined {
    this.displayedCount++;
    const slot = this.slotOf.get(rtp32);
    if (slot === undefined) return undefined;
    this.matchedCount++;
    if (displayMs - this.calibratedAtMs >= this.recalibrateMs) this.calibrate(displayMs);
    const sentMs = this.sentMs[slot]!;
    const capture = this.offsetMs === undefined ? undefined : this.sentRtpMs[slot]! - this.offsetMs;
    // A capture after its own encoding would be a broken calibration: fall back rather than report it.
    const fromCapture = capture !== undefined && capture <= sentMs;
    const sample: GlassSample = {
      rtpTimestamp: rtp32,
      captureMs: fromCapture ? capture : sentMs,
      fromCapture,
      sentMs,
      receiveMs,
      displayMs,
    };
    this.glass.push(displayMs, displayMs - sample.captureMs);
    this.captureToSent.push(displayMs, fromCapture ? sentMs - capture : NaN);
    this.sentToReceive.push(displayMs, receiveMs - sentMs);
    this.receiveToDisplay.push(displayMs, displayMs - receiveMs);
    this.onSample?.(sample);
    return sample;
  }

  get matchedFrames(): number {
    return this.matchedCount;
  }

  summary(nowMs: number): GlassSummary {
    const [glassP50, glassP95] = this.glass.percentiles(nowMs, 50, 95);
    return {
      count: this.glass.count(nowMs),
      displayed: this.displayedCount,
      matched: this.matchedCount,
      matchedRatio: this.displayedCount > 0 ? this.matchedCount / this.displayedCount : NaN,
      fromCapture: this.offsetMs !== undefined,
      glassP50,
      glassP95,
      captureToSentP50: this.captureToSent.percentile(nowMs, 50),
      sentToReceiveP50: this.sentToReceive.percentile(nowMs, 50),
      receiveToDisplayP50: this.receiveToDisplay.percentile(nowMs, 50),
    };
  }

  private calibrate(nowMs: number): void {
    this.calibratedAtMs = nowMs;
    const estimate = estimateRtpCaptureOffset(
      { rtpMs: this.sentRtpMs, sentMs: this.sentMs, count: this.sentSize },
      { ms: this.captures, count: this.captureSize },
    );
    // Keep the previous estimate through a window without agreement (e.g. the camera paused).
    if (estimate) this.offsetMs = estimate.offsetMs;
  }
}

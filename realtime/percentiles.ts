// Moving percentiles over the most recent N samples: the engine's view of what each stage costs now
// (and the stats sent to clients). A fixed-size ring, so memory and cost never grow with uptime.

export class MovingPercentiles {
  private readonly ring: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(readonly capacity = 300) {
    this.ring = new Float64Array(capacity);
  }

  add(value: number): void {
    this.ring[this.next] = value;
    this.next = (this.next + 1) % this.capacity;
    if (this.filled < this.capacity) this.filled++;
  }

  get count(): number {
    return this.filled;
  }

  /** Nearest-rank percentile (p in 0..100) of the window; NaN when empty. */
  percentile(p: number): number {
    if (this.filled === 0) return NaN;
    const sorted = Array.from(this.ring.subarray(0, this.filled)).sort((a, b) => a - b);
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
  }

  clear(): void {
    this.next = 0;
    this.filled = 0;
  }
}

/** Events per second over a sliding time window. */
export class RateMeter {
  private readonly times: number[] = [];
  constructor(private readonly windowMs = 2000) {}

  mark(atMs: number): void {
    this.times.push(atMs);
    this.trim(atMs);
  }

  rate(atMs: number): number {
    this.trim(atMs);
    if (this.times.length < 2) return 0;
    const span = atMs - this.times[0]!;
    return span > 0 ? ((this.times.length - 1) * 1000) / Math.max(span, this.windowMs / 2) : 0;
  }

  private trim(atMs: number): void {
    while (this.times.length > 0 && atMs - this.times[0]! > this.windowMs) this.times.shift();
  }
}

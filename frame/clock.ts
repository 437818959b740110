// One clock for every thread. performance.now() has a per-thread origin, so stage records written in a
// worker would not line up with the main thread's; timeOrigin + now() is epoch milliseconds with
// sub-millisecond resolution and is comparable across threads.
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A source of the time, for code whose decisions depend on it: the engine takes one, tests pass a manual one. */
export interface Clock {
  /** Epoch milliseconds, as nowMs(). */
  now(): number;
}

export const systemClock: Clock = { now: nowMs };

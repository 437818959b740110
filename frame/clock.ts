// One clock for every thread. performance.now() has a per-thread origin, so stage records written in a
// worker would not line up with the main thread's; timeOrigin + now() is epoch milliseconds with
// sub-millisecond resolution and is comparable across threads.
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

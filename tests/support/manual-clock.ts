// A clock that moves only when a test says so, for code that takes a Clock (frame/clock.ts): its decisions
// then depend on the test's arithmetic, not on how busy the machine is.
import type { Clock } from '../../frame/clock.js';

export class ManualClock implements Clock {
  constructor(private ms = 1_000_000) {}

  now(): number {
    return this.ms;
  }

  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Lets every promise callback that is ready run (not a timer wait: nothing here depends on elapsed time). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

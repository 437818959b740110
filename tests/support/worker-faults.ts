// Faults injected through the product's own seams: ModelRuntime's workerEntry (a worker that crashes on
// cue) and VideoEgress's openEncoder (real encoders that fail on cue), both reachable from startServer.
import { BroadcastChannel } from 'node:worker_threads';
import { openVideoEncoder, type OpenEncoder } from '../../stream/egress.js';

export const CRASH_CHANNEL = 'sds-test-worker-crash';

/** The inference worker entry that crashes on cue (tests/support/crash-on-cue-worker.ts). */
export const CRASH_ON_CUE_WORKER = new URL('./crash-on-cue-worker.js', import.meta.url);

/** Every crash-on-cue worker thread of this process dies at its next run. */
export function crashWorkers(): void {
  const channel = new BroadcastChannel(CRASH_CHANNEL);
  channel.postMessage('crash');
  channel.close();
}

/** Real encoders whose next `count` encodes (over all of them; failNext(0) stops it) throw as a failing encoder would. */
export function encodersFailingOnCue(): { openEncoder: OpenEncoder; failNext(count: number): void } {
  let failures = 0;
  return {
    failNext: (count) => {
      failures = count;
    },
    openEncoder: async (options) => {
      const encoder = await openVideoEncoder(options);
      return {
        encode: (image, rtpTimestamp, keyframe) => {
          if (failures > 0) {
            failures--;
            return Promise.reject(new Error('injected encoder fault (test)'));
          }
          return encoder.encode(image, rtpTimestamp, keyframe);
        },
        close: () => encoder.close(),
      };
    },
  };
}

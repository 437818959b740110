// An inference worker thread that dies as a bug in it would, on cue: the real worker (serveInference) with
// each stream's restyler wrapped. A run for a stream whose id starts with "crash", or the next run after
// crashWorkers() (any stream), never finishes and the thread dies of an uncaught exception. Runs are
// serial, so the thread dies between onnxruntime calls, never inside one (that would abort the process).
import { BroadcastChannel } from 'node:worker_threads';
import { serveInference, WARM_UP_STREAM } from '../../realtime/worker/serve-inference.js';
import { StreamRestyler } from '../../realtime/stream-restyler.js';
import { CRASH_CHANNEL } from './worker-faults.js';

let crashNext = false;
const cue = new BroadcastChannel(CRASH_CHANNEL);
cue.onmessage = () => {
  crashNext = true;
};
cue.unref();

function crash(): Promise<never> {
  return new Promise<never>(() => {
    setImmediate(() => {
      throw new Error('inference worker crashed (fault injected by a test)');
    });
  });
}

serveInference({
  restylerFor: (model, streamId) => {
    const real = new StreamRestyler(model);
    // The warm-up runs before the worker is ready: a cue then crashes the first real run, as it always did.
    const crashes = () => streamId !== WARM_UP_STREAM && (crashNext || streamId.startsWith('crash'));
    return { restyle: (req) => (crashes() ? crash() : real.restyle(req)) };
  },
});

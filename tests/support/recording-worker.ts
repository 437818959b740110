// An inference worker thread that says what it restyles: the real worker (serveInference) with each stream's
// restyler wrapped to log the stream, frame size and scale of every request (warm-up included) through the
// worker's own log messages, which ModelRuntime hands to its logger.
import { parentPort } from 'node:worker_threads';
import { serveInference } from '../../realtime/worker/serve-inference.js';
import { StreamRestyler } from '../../realtime/stream-restyler.js';

serveInference({
  restylerFor: (model, streamId) => {
    const real = new StreamRestyler(model);
    return {
      restyle: (req) => {
        parentPort!.postMessage({
          type: 'log',
          level: 'info',
          message: `restyle ${streamId} ${req.image.width}x${req.image.height} scale ${req.scale}`,
        });
        return real.restyle(req);
      },
    };
  },
});

// An inference worker thread's work: load the model once, warm it up, then dispatch requests in arrival
// order to the restyler of their stream (realtime/stream-restyler.ts: the per-stream state). onnxruntime's
// run() blocks its thread, which is why this runs off the main thread; a stream is pinned to one worker.
// The thread's entry is inference-worker.ts; ModelRuntime may be given another entry (workerEntry) that
// calls serveInference with its own restylers, which is how tests make a worker fail as a bug would.
import { parentPort, workerData } from 'node:worker_threads';
import { LoadedModel } from '../../models/loaded-model.js';
import { StreamRestyler, type StreamFrameRequest, type StreamFrameResult } from '../stream-restyler.js';
import type { FromWorker, RunRequest, ToWorker, WorkerInit } from './protocol.js';

/** What the worker asks of a stream's restyler. */
export interface FrameRestyler {
  restyle(req: StreamFrameRequest): Promise<StreamFrameResult>;
}

export interface ServeInferenceOptions {
  /** A new stream's restyler (default: a StreamRestyler). */
  restylerFor?(model: LoadedModel, streamId: string): FrameRestyler;
}

/** The stream id the warm-up frames run under (never a session id: those are UUIDs). */
export const WARM_UP_STREAM = '(warm-up)';

/** Serve this worker thread's requests until the main thread sends 'close'. */
export function serveInference(options: ServeInferenceOptions = {}): void {
  const port = parentPort;
  if (!port) throw new Error('an inference worker must run as a worker thread');
  const post = (msg: FromWorker): void => port.postMessage(msg);
  main(workerData as WorkerInit, port, post, options.restylerFor ?? ((model) => new StreamRestyler(model))).catch((err: unknown) => {
    post({ type: 'init-error', message: (err as Error)?.message ?? String(err) });
  });
}

async function main(
  init: WorkerInit,
  port: NonNullable<typeof parentPort>,
  post: (msg: FromWorker) => void,
  restylerFor: (model: LoadedModel, streamId: string) => FrameRestyler,
): Promise<void> {
  const logger = {
    info: (message: string) => post({ type: 'log', level: 'info', message }),
    warn: (message: string) => post({ type: 'log', level: 'warn', message }),
  };
  const model = await LoadedModel.load(init.modelDir, {
    provider: init.provider,
    fallbackToCpu: init.fallbackToCpu,
    intraOpThreads: init.intraOpThreads,
    logger,
    pixelGraphs: init.pixelGraphs ?? true,
    imageBlend: init.imageBlend ?? 'auto',
  });
  const manifest = model.manifest;
  const streams = new Map<string, FrameRestyler>();
  const restyle = (req: RunRequest) => {
    let stream = streams.get(req.streamId);
    if (!stream) streams.set(req.streamId, (stream = restylerFor(model, req.streamId)));
    const image = { width: req.width, height: req.height, data: new Uint8Array(req.pixels) };
    return stream.restyle({ ...req, image });
  };

  const run = async (req: RunRequest): Promise<void> => {
    try {
      const { image: out, stages } = await restyle(req);
      // A view into a larger buffer (an output onnxruntime allocated) is cut to the frame before it is posted.
      const whole = out.data.byteOffset === 0 && out.data.byteLength === out.data.buffer.byteLength;
      const buf = (whole ? out.data.buffer : out.data.slice().buffer) as ArrayBuffer;
      // Copied, not transferred: detaching any ArrayBuffer in this isolate makes V8 add a detach check
      // to every typed-array access from then on, and all the per-pixel code here (pre/postprocess,
      // flow, warps) ran 15-25 % slower for it; copying 245 kB costs far less than that.
      post({ type: 'result', id: req.id, width: out.width, height: out.height, pixels: buf, stages });
    } catch (err) {
      post({ type: 'error', id: req.id, message: (err as Error)?.message ?? String(err) });
    }
  };

  // Requests run one at a time in arrival order; the main thread already tracks what is queued. Ending the
  // thread joins the same chain: a thread terminated while onnxruntime is inside a native call aborts the
  // whole process (node-addon-api throws into the dying environment), so the thread only ever ends between runs.
  let chain = Promise.resolve();
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'release') streams.delete(msg.streamId);
    else if (msg.type === 'run') chain = chain.then(() => run(msg));
    else if (msg.type === 'close') chain = chain.then(() => process.exit(0));
  });
  // Warm up before taking traffic, through the same path requests take: onnxruntime's first run at
  // each input shape allocates and plans (often 10× a normal run), and the first calls of the flow and
  // warp loops run unoptimised JavaScript; either would otherwise land on a stream's first frames and
  // skew the deadline scheduler's cost estimates. A few moving frames at the served size with consistency
  // on, then the half size used under load: a run at a new shape re-plans and re-allocates onnxruntime's
  // buffers, and a stream's first switch to half resolution paid that cost when warm-up used the native size.
  const { width, height } = init.servedResolution ?? manifest.resolution;
  const warmFrame = (t: number) => {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0, i = 0; y < height; y++)
      for (let x = 0; x < width; x++, i += 3) data[i] = data[i + 1] = data[i + 2] = ((x + 2 * t) * 3 + y * 5) & 0xff;
    return { width, height, data };
  };
  const halfFits = (width / 2) % manifest.sizeMultiple === 0 && (height / 2) % manifest.sizeMultiple === 0;
  const scales: Array<1 | 0.5> = [1, 1, 1, 1, 1, ...(halfFits ? ([0.5, 0.5] as const) : [])];
  chain = chain.then(async () => {
    // Through restylerFor, as a stream's frames go (a test's recording restyler sees the warm-up too).
    const warmUp = restylerFor(model, WARM_UP_STREAM);
    for (const [t, scale] of scales.entries()) {
      await warmUp.restyle({
        image: warmFrame(t),
        style: '',
        prompt: [{ prompt: '', weight: 1 }],
        strength: 0.5,
        steps: 1,
        seed: 0,
        consistency: 1,
        scale,
      });
    }
    post({ type: 'ready', provider: model.provider });
  });
  await chain;
}

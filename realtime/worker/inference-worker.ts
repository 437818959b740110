// Inference worker entry: loads the model's sessions once, then runs img2img per request. onnxruntime's
// run() blocks its thread, which is why this lives off the main thread. Per-stream state (the fixed
// noise and the latent cache for temporal consistency) lives here, keyed by stream id, because a
// stream is pinned to one worker.
import { parentPort, workerData } from 'node:worker_threads';
import type { RgbImage, StageTiming } from '../../frame/video-frame.js';
import { loadComponents } from '../../models/components.js';
import { ConditioningTable, type ConditioningEmbeds } from '../../models/conditioning.js';
import { FixedNoise, img2img } from '../../models/img2img.js';
import { LatentCache, type TemporalGuidance } from '../latent-cache.js';
import type { TextEncoder } from '../../models/text-encoder.js';
import { nowMs } from '../../frame/clock.js';
import { double, halve } from '../../models/resample.js';
import { loadManifest } from '../../models/manifest.js';
import { NoiseSchedule } from '../../models/scheduler.js';
import type { FromWorker, RunRequest, ToWorker, WorkerInit } from './protocol.js';

const port = parentPort;
if (!port) throw new Error('inference-worker.js must run as a worker thread');
const post = (msg: FromWorker): void => port.postMessage(msg);

async function main(init: WorkerInit): Promise<void> {
  const manifest = loadManifest(init.modelDir);
  const logger = {
    info: (message: string) => post({ type: 'log', level: 'info', message }),
    warn: (message: string) => post({ type: 'log', level: 'warn', message }),
  };
  const components = await loadComponents(manifest, {
    provider: init.provider,
    fallbackToCpu: init.fallbackToCpu,
    intraOpThreads: init.intraOpThreads,
    logger,
  });
  const model = { manifest, schedule: new NoiseSchedule(manifest.scheduler), components };
  const conditioning = new ConditioningTable(manifest);
  /** Flow runs at twice the latent grid: image pixels per flow pixel = the VAE's reduction / 2. */
  const flowFactor = Math.max(1, manifest.latent.downscale / 2);
  const streams = new Map<string, { noise: FixedNoise; cache: LatentCache }>();
  // Text models encode their prompts here (once per distinct prompt: cached); a text model exported
  // without its text encoder runs unconditioned, which the log says once.
  const sessionConfig = { provider: components.provider, fallbackToCpu: true, intraOpThreads: init.intraOpThreads, logger };
  // Loaded only for such a model, so a style model (and a GPU bundle without the tokenizer package) never needs it.
  // SDXL has a second encoder with its own tokenizer; either pair is enough to encode prompts.
  const c = manifest.components;
  const hasTextEncoder = (c.text_encoder && c.tokenizer) || (c.text_encoder_2 && c.tokenizer_2);
  const text = manifest.conditioning.kind === 'text' && hasTextEncoder ? await import('../../models/text-encoder.js') : undefined;
  const textEncoder: TextEncoder | undefined = text ? await text.TextEncoder.load(manifest, sessionConfig, components.denoiser) : undefined;
  if (manifest.conditioning.kind === 'text' && !textEncoder)
    post({ type: 'log', level: 'warn', message: `${manifest.name}: no text_encoder/tokenizer in the model folder; prompts are ignored` });
  const conditionFor = async (req: RunRequest, stages: StageTiming[]): Promise<ConditioningEmbeds> => {
    const { contextTokens, contextDim } = components.denoiser;
    if (!textEncoder) return conditioning.embedding(req.style, contextTokens, contextDim);
    const start = nowMs();
    const embedding = await text!.blendPrompts(textEncoder, req.prompt);
    stages.push({ name: 'text_encode', startMs: start, endMs: nowMs() });
    return embedding;
  };

  const restyle = async (req: RunRequest): Promise<{ out: RgbImage; stages: StageTiming[] }> => {
    const stages: StageTiming[] = [];
    {
      let stream = streams.get(req.streamId);
      const noiseWanted = new FixedNoise(req.seed, req.seedBlend);
      if (!stream || stream.noise.key !== noiseWanted.key) {
        stream = { noise: noiseWanted, cache: new LatentCache(flowFactor) };
        streams.set(req.streamId, stream);
      }
      const { noise, cache } = stream;
      let input: RgbImage = { width: req.width, height: req.height, data: new Uint8Array(req.pixels) };
      if (req.scale === 0.5) {
        const start = nowMs();
        input = halve(input);
        stages.push({ name: 'preprocess', startMs: start, endMs: nowMs() });
      }
      // Temporal consistency works on full-size frames only; a half-size frame (deadline degradation)
      // neither uses nor replaces the cache, so the next full-size frame flows from the last one. At
      // consistency 0 nothing is computed or kept (it costs nothing); switching it on primes the cache
      // with one frame.
      if (req.consistency <= 0) cache.reset();
      const gray = req.scale === 1 && req.consistency > 0 ? cache.flowFrame(input, stages) : undefined;
      let guidance: TemporalGuidance | undefined;
      const result = await img2img(
        model,
        input,
        {
          steps: req.steps,
          strength: req.strength,
          conditioning: await conditionFor(req, stages),
          noise,
          guidance: gray ? (dims, st) => (guidance = cache.guide(gray, dims, req.consistency, st)) : undefined,
        },
        stages,
      );
      if (gray) {
        cache.blendImage(result.image, guidance, stages);
        cache.commit(gray, result.outputLatent, result.dims, result.image); // the cache keeps a copy
      }
      let out = result.image;
      if (req.scale === 0.5) {
        const start = nowMs();
        out = double(out);
        stages.push({ name: 'postprocess', startMs: start, endMs: nowMs() });
      }
      return { out, stages };
    }
  };

  const run = async (req: RunRequest): Promise<void> => {
    try {
      const { out, stages } = await restyle(req);
      const buf = out.data.buffer as ArrayBuffer;
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
  port!.on('message', (msg: ToWorker) => {
    if (msg.type === 'release') streams.delete(msg.streamId);
    else if (msg.type === 'run') chain = chain.then(() => run(msg));
    else if (msg.type === 'close') chain = chain.then(() => process.exit(0));
    else if (msg.type === 'crash') {
      // The chain stops here (nothing after it starts), then the thread dies of an uncaught exception.
      chain = chain.then(
        () =>
          new Promise<void>(() => {
            setImmediate(() => {
              throw new Error('inference worker crashed (fault injected by a test)');
            });
          }),
      );
    }
  });
  // Warm up before taking traffic, through the same path requests take: onnxruntime's first run at
  // each input shape allocates and plans (often 10× a normal run), and the first calls of the flow and
  // warp loops run unoptimised JavaScript; either would otherwise land on a stream's first frames and
  // skew the deadline scheduler's cost estimates. A few moving frames at native size with consistency
  // on, then the half size used under load.
  const { width, height } = manifest.resolution;
  const warmFrame = (t: number): ArrayBuffer => {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0, i = 0; y < height; y++) for (let x = 0; x < width; x++, i += 3) data[i] = data[i + 1] = data[i + 2] = ((x + 2 * t) * 3 + y * 5) & 0xff;
    return data.buffer;
  };
  const halfFits = (width / 2) % manifest.sizeMultiple === 0 && (height / 2) % manifest.sizeMultiple === 0;
  const scales: Array<1 | 0.5> = [1, 1, 1, 1, 1, ...(halfFits ? [0.5 as const] : [])];
  chain = chain.then(async () => {
    for (const [t, scale] of scales.entries()) {
      await restyle({ type: 'run', id: -1, streamId: '\0warm-up', width, height, pixels: warmFrame(t), style: '', prompt: [{ prompt: '', weight: 1 }], strength: 0.5, steps: 1, seed: 0, consistency: 1, scale });
    }
    streams.delete('\0warm-up');
    post({ type: 'ready', provider: components.provider });
  });
  await chain;
}

main(workerData as WorkerInit).catch((err: unknown) => {
  post({ type: 'init-error', message: (err as Error)?.message ?? String(err) });
});

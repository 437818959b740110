// The model runtime as the engine sees it (a Restyler): a pool of inference worker threads, each holding
// its own ONNX sessions. A stream is pinned to one worker (its fixed noise lives there); pixels cross
// threads as transferred buffers. A worker that fails a request rejects only that request; a worker
// that dies is restarted and its in-flight requests rejected. close() terminates every worker.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { loadManifest, type ModelManifest } from '../models/manifest.js';
import type { LineLog } from '../frame/log.js';
import type {
  ExecutionProvider,
  ImageBlendPlacement,
  RestyleRequest,
  RestyleResult,
  Restyler,
  RestylerInfo,
} from '../models/restyle-types.js';
import type { FromWorker, RunRequest, ToWorker, WorkerInit } from './worker/protocol.js';

export interface ModelRuntimeOptions {
  modelDir: string;
  provider?: ExecutionProvider;
  /** When the provider cannot load a model: log one line and use CPU (default), or fail. */
  fallbackToCpu?: boolean;
  /** Worker threads (default 1). */
  workers?: number;
  /** onnxruntime intra-op threads per worker (default: available cores / workers, at least 1). */
  intraOpThreads?: number;
  logger?: LineLog;
  /**
   * The size frames will come at (the server's --resolution): the workers warm up there and at its half, so the
   * first frames and the first switch to half resolution do not pay onnxruntime's first-run cost at a new shape.
   */
  servedResolution?: { width: number; height: number };
  /** Run the VAE in pixel graphs where the model allows (default true; models/pixel-graphs.ts). */
  pixelGraphs?: boolean;
  /** Where consistency's image warp and blend runs (default auto). */
  imageBlend?: ImageBlendPlacement;
  /**
   * The module each worker thread runs (default: worker/inference-worker.js). Another entry calls
   * serveInference (worker/serve-inference.ts) with its own restylers: how tests inject a failing worker.
   */
  workerEntry?: URL;
}

export class RuntimeClosedError extends Error {
  constructor() {
    super('model runtime is closed');
    this.name = 'RuntimeClosedError';
  }
}

interface Pending {
  resolve(r: RestyleResult): void;
  reject(e: Error): void;
}

const UTILIZATION_WINDOW_MS = 3000;
/** close(): how long a worker may take to finish its current run (or its model load and warm-up) and exit. */
const WORKER_CLOSE_TIMEOUT_MS = 10_000;

const WORKER_ENTRY = new URL('./worker/inference-worker.js', import.meta.url);

/** One worker thread and what it owes: restarted in place if it dies. */
class WorkerSlot {
  worker: Worker | undefined;
  ready: Promise<ExecutionProvider>;
  readonly inflight = new Map<number, Pending>();
  pinned = 0;
  private closing = false;

  constructor(
    readonly index: number,
    private readonly entry: URL,
    private readonly init: WorkerInit,
    private readonly logger: LineLog | undefined,
  ) {
    this.ready = this.spawn();
  }

  private spawn(): Promise<ExecutionProvider> {
    // Workers inherit the parent's node flags, and --input-type (from `node -e`) would stop a file worker: drop it
    // only then. An explicit execArgv is validated, and Node 24's test runner hands its children process-wide flags
    // (--stack-trace-limit, --secure-heap, ...) that a worker refuses, so otherwise the inherited flags stand.
    const inputType = (a: string): boolean => a.startsWith('--input-type');
    const execArgv = process.execArgv.some(inputType) ? process.execArgv.filter((a) => !inputType(a)) : undefined;
    const worker = new Worker(this.entry, { workerData: this.init, name: `inference-${this.index}`, execArgv });
    this.worker = worker;
    let wasReady = false;
    const ready = new Promise<ExecutionProvider>((resolve, reject) => {
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'ready':
            wasReady = true;
            return resolve(msg.provider);
          case 'init-error':
            reject(new Error(msg.message));
            void worker.terminate();
            return;
          case 'log':
            return this.logger?.[msg.level](msg.message);
          case 'result': {
            const p = this.inflight.get(msg.id);
            this.inflight.delete(msg.id);
            return p?.resolve({ image: { width: msg.width, height: msg.height, data: new Uint8Array(msg.pixels) }, stages: msg.stages });
          }
          case 'error': {
            const p = this.inflight.get(msg.id);
            this.inflight.delete(msg.id);
            return p?.reject(new Error(msg.message));
          }
        }
      });
      worker.on('error', (err) => {
        this.logger?.warn(`inference worker ${this.index} crashed: ${err.message}`);
        reject(err);
      });
      worker.on('exit', (code) => {
        if (this.worker === worker) this.worker = undefined;
        reject(new Error(`inference worker ${this.index} exited (code ${code}) before it was ready`));
        this.rejectAll(new Error(`inference worker ${this.index} exited (code ${code}) while running this request`));
        // Restart only a worker that had loaded: one that cannot load would fail the same way again.
        if (!this.closing && wasReady) {
          this.logger?.warn(`inference worker ${this.index} exited (code ${code}); restarting it`);
          this.ready = this.spawn();
          this.ready.catch((e: Error) => this.logger?.warn(`inference worker ${this.index} failed to restart: ${e.message}`));
        }
      });
    });
    ready.catch(() => undefined); // observed via this.ready by callers
    return ready;
  }

  post(req: RunRequest, transfer: ArrayBuffer[], pending: Pending): void {
    this.inflight.set(req.id, pending);
    this.ready.then(
      () => {
        if (!this.inflight.has(req.id)) return;
        if (!this.worker) return this.fail(req.id, new Error(`inference worker ${this.index} is not running`));
        this.worker.postMessage(req, transfer);
      },
      (err: Error) => this.fail(req.id, err),
    );
  }

  release(streamId: string): void {
    this.worker?.postMessage({ type: 'release', streamId });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.rejectAll(new RuntimeClosedError());
    const w = this.worker;
    this.worker = undefined;
    if (!w || w.threadId < 0) return;
    // Ask the thread to end after its current run; terminate only one that does not (it is stuck).
    let timer: NodeJS.Timeout | undefined;
    const exit = new Promise<boolean>((resolve) => w.once('exit', () => resolve(true)));
    w.postMessage({ type: 'close' } satisfies ToWorker);
    const exited = await Promise.race([
      exit,
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), WORKER_CLOSE_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!exited) {
      this.logger?.warn(`inference worker ${this.index} did not end within ${WORKER_CLOSE_TIMEOUT_MS} ms; terminating it`);
      await w.terminate();
    }
  }

  private fail(id: number, err: Error): void {
    const p = this.inflight.get(id);
    this.inflight.delete(id);
    p?.reject(err);
  }

  private rejectAll(err: Error): void {
    const all = [...this.inflight.values()];
    this.inflight.clear();
    for (const p of all) p.reject(err);
  }
}

export class ModelRuntime implements Restyler {
  readonly info: RestylerInfo;
  private readonly pins = new Map<string, WorkerSlot>();
  private nextId = 1;
  private closed = false;
  /** [end time, busy ms] of recent requests, for utilization(). */
  private readonly busy: Array<[number, number]> = [];

  private constructor(
    readonly manifest: ModelManifest,
    private readonly slots: WorkerSlot[],
    provider: ExecutionProvider,
  ) {
    const c = manifest.conditioning;
    this.info = {
      name: manifest.name,
      width: manifest.resolution.width,
      height: manifest.resolution.height,
      styles: c.kind === 'styles' ? c.styles.map((s) => s.id) : [],
      styleLabels: c.kind === 'styles' ? Object.fromEntries(c.styles.map((s) => [s.id, s.label])) : {},
      steps: manifest.steps,
      conditioning: c.kind,
      defaults: { ...manifest.defaults },
      provider,
      workers: slots.length,
    };
  }

  /** Read the model folder, start the workers and wait until every one has loaded its sessions. */
  static async load(options: ModelRuntimeOptions): Promise<ModelRuntime> {
    const manifest = loadManifest(options.modelDir); // fail fast, on this thread, with the manifest's own message
    const workers = Math.max(1, Math.floor(options.workers ?? 1));
    const init: WorkerInit = {
      modelDir: manifest.dir,
      provider: options.provider ?? 'cpu',
      fallbackToCpu: options.fallbackToCpu ?? true,
      intraOpThreads: Math.max(1, Math.floor(options.intraOpThreads ?? availableParallelism() / workers)),
      ...(options.servedResolution ? { servedResolution: options.servedResolution } : {}),
      ...(options.pixelGraphs === false ? { pixelGraphs: false } : {}),
      ...(options.imageBlend ? { imageBlend: options.imageBlend } : {}),
    };
    const slots = Array.from({ length: workers }, (_, i) => new WorkerSlot(i, options.workerEntry ?? WORKER_ENTRY, init, options.logger));
    try {
      const providers = await Promise.all(slots.map((s) => s.ready));
      const provider = providers.every((p) => p === init.provider) ? init.provider : 'cpu';
      options.logger?.info(
        `model "${manifest.name}" loaded: ${workers} worker(s), provider ${provider}, ${init.intraOpThreads} intra-op thread(s) each`,
      );
      return new ModelRuntime(manifest, slots, provider);
    } catch (err) {
      await Promise.all(slots.map((s) => s.close()));
      throw new Error(`cannot load model ${manifest.dir}: ${(err as Error).message}`);
    }
  }

  restyle(request: RestyleRequest): Promise<RestyleResult> {
    if (this.closed) return Promise.reject(new RuntimeClosedError());
    const slot = this.slotFor(request.streamId);
    const { data } = request.image;
    // Transfer the caller's buffer when the image owns all of it; otherwise copy just the pixels once.
    // Taking it now (structuredClone with transfer moves the memory, no copy) keeps the contract
    // that the caller's buffer is gone once restyle() returns, even while the worker is still starting.
    const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
    const pixels = whole
      ? structuredClone(data.buffer as ArrayBuffer, { transfer: [data.buffer as ArrayBuffer] })
      : (data.slice().buffer as ArrayBuffer);
    const msg: RunRequest = {
      type: 'run',
      id: this.nextId++,
      streamId: request.streamId,
      width: request.image.width,
      height: request.image.height,
      pixels,
      style: request.styleBlend ?? request.style,
      prompt: request.promptBlend ?? [{ prompt: request.prompt, weight: 1 }],
      seedBlend: request.seedBlend,
      strength: request.strength,
      steps: request.steps,
      seed: request.seed,
      consistency: request.consistency,
      scale: request.scale ?? 1,
    };
    return new Promise<RestyleResult>((resolve, reject) => slot.post(msg, [pixels], { resolve, reject })).then((result) => {
      const first = result.stages[0];
      const last = result.stages[result.stages.length - 1];
      if (first && last) this.busy.push([last.endMs, last.endMs - first.startMs]);
      return result;
    });
  }

  /**
   * Measured load: the fraction of the last few seconds the workers spent running requests (0..1 per
   * worker, averaged). Admission control reads it to refuse a session that would overload the runtime.
   */
  utilization(nowMs = performance.timeOrigin + performance.now()): number {
    while (this.busy.length > 0 && nowMs - this.busy[0]![0] > UTILIZATION_WINDOW_MS) this.busy.shift();
    const total = this.busy.reduce((sum, [, ms]) => sum + ms, 0);
    return total / (UTILIZATION_WINDOW_MS * this.slots.length);
  }

  releaseStream(streamId: string): void {
    const slot = this.pins.get(streamId);
    if (!slot) return;
    this.pins.delete(streamId);
    slot.pinned--;
    slot.release(streamId);
  }

  get queueDepth(): number {
    return this.slots.reduce((n, s) => n + s.inflight.size, 0);
  }

  /** Worker threads currently alive (0 after close()). */
  get liveWorkers(): number {
    return this.slots.filter((s) => s.worker !== undefined).length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.close()));
    this.pins.clear();
  }

  private slotFor(streamId: string): WorkerSlot {
    let slot = this.pins.get(streamId);
    if (!slot) {
      slot = this.slots.reduce((best, s) =>
        s.pinned < best.pinned || (s.pinned === best.pinned && s.inflight.size < best.inflight.size) ? s : best,
      );
      slot.pinned++;
      this.pins.set(streamId, slot);
    }
    return slot;
  }
}

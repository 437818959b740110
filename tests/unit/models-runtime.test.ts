// The worker pool (ModelRuntime) as the engine uses it: worker threads, transferred pixels, per-stream
// pinning, errors that stay with their request, crash recovery, and a close() that leaves no threads.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { RestyleRequest } from '../../models/restyle-types.js';
import { ModelRuntime } from '../../realtime/model-runtime.js';
import { WARM_UP_STREAM } from '../../realtime/worker/serve-inference.js';
import { CRASH_ON_CUE_WORKER } from '../support/worker-faults.js';
import { requireDefaultModel } from '../support/test-dependency.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SD_TINY = join(ROOT, 'tests/fixtures/sd-tiny');
const DEFAULT_MODEL = join(ROOT, 'models/default');

function request(streamId: string, width = 64, height = 64, seed = 1): RestyleRequest {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
  return { streamId, image: { width, height, data }, style: '', prompt: '', strength: 0.5, steps: 2, seed, consistency: 0 };
}

async function withRuntime(
  options: Partial<Parameters<typeof ModelRuntime.load>[0]>,
  fn: (rt: ModelRuntime) => Promise<void>,
): Promise<void> {
  const rt = await ModelRuntime.load({ modelDir: SD_TINY, intraOpThreads: 1, ...options });
  try {
    await fn(rt);
  } finally {
    await rt.close();
  }
}

describe('ModelRuntime', () => {
  it('describes the loaded model', async () => {
    await withRuntime({}, async (rt) => {
      assert.deepEqual(
        { ...rt.info, steps: [...rt.info.steps], styles: [...rt.info.styles] },
        {
          name: 'sd-tiny',
          width: 64,
          height: 64,
          styles: [],
          styleLabels: {},
          steps: [1, 2, 3, 4],
          conditioning: 'text',
          defaults: { steps: 1, strength: 0.5, style: '' },
          provider: 'cpu',
          workers: 1,
        },
      );
    });
  });

  it('restyles a frame in a worker, transferring (not copying) the pixels', async () => {
    await withRuntime({}, async (rt) => {
      const req = request('a');
      const pending = rt.restyle(req);
      assert.equal(req.image.data.byteLength, 0, 'the input buffer was transferred to the worker');
      assert.equal(rt.queueDepth, 1);
      const res = await pending;
      assert.equal(rt.queueDepth, 0);
      assert.deepEqual([res.image.width, res.image.height, res.image.data.length], [64, 64, 64 * 64 * 3]);
      // sd-tiny is a text model: its prompt is encoded (or taken from the cache) first.
      assert.deepEqual(
        res.stages.map((s) => s.name),
        ['text_encode', 'vae_encode', 'denoise', 'vae_decode'],
      );
      const now = performance.timeOrigin + performance.now();
      assert.ok(
        res.stages.every((s) => s.startMs <= s.endMs && s.endMs <= now && s.startMs > now - 60_000),
        'stage times are epoch ms',
      );
    });
  });

  it('gives identical output for identical input on a stream (fixed per-stream noise)', async () => {
    await withRuntime({}, async (rt) => {
      const a = await rt.restyle(request('s', 64, 64, 9));
      const b = await rt.restyle(request('s', 64, 64, 9));
      const c = await rt.restyle(request('s', 64, 64, 10));
      assert.deepEqual(b.image.data, a.image.data);
      assert.notDeepEqual(c.image.data, a.image.data);
      rt.releaseStream('s');
      assert.deepEqual((await rt.restyle(request('s', 64, 64, 9))).image.data, a.image.data);
    });
  });

  it('rejects a request the worker cannot run with its message, and keeps serving', async () => {
    await withRuntime({}, async (rt) => {
      const bad = request('a');
      bad.image = { width: 64, height: 64, data: new Uint8Array(100) };
      await assert.rejects(rt.restyle(bad), /image data has 100 bytes; 64×64 RGB needs 12288/);
      await assert.rejects(rt.restyle(request('a', 60, 60)), /not a multiple of 8/);
      const ok = await rt.restyle(request('a'));
      assert.equal(ok.image.data.length, 64 * 64 * 3);
      assert.equal(rt.queueDepth, 0);
    });
  });

  it('rejects in-flight requests of a worker that dies, restarts it and keeps serving', async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    await withRuntime({ logger, workerEntry: CRASH_ON_CUE_WORKER }, async (rt) => {
      // The worker dies in this request's run (a stream named "crash…"), as a bug in it would.
      const inflight = rt.restyle(request('crash', 64, 64));
      const queued = rt.restyle(request('a'));
      await assert.rejects(inflight, /inference worker 0 exited/);
      await assert.rejects(queued, /inference worker 0 exited/);
      const after = await rt.restyle(request('a'));
      assert.equal(after.image.data.length, 64 * 64 * 3);
      assert.equal(rt.liveWorkers, 1);
      assert.ok(
        lines.some((l) => /inference worker 0 exited .*restarting/.test(l)),
        lines.join('\n'),
      );
    });
  });

  it('pins each stream to one worker and spreads streams over the pool', async () => {
    await withRuntime({ workers: 2 }, async (rt) => {
      assert.equal(rt.info.workers, 2);
      assert.equal(rt.liveWorkers, 2);
      const results = await Promise.all([rt.restyle(request('x')), rt.restyle(request('y')), rt.restyle(request('x'))]);
      assert.deepEqual(results[0]!.image.data, results[2]!.image.data);
      assert.deepEqual(results[0]!.image.data, results[1]!.image.data); // same seed + input on either worker
    });
  });

  it('close() terminates every worker and rejects later requests', async () => {
    const rt = await ModelRuntime.load({ modelDir: SD_TINY, workers: 2, intraOpThreads: 1 });
    const rejected = assert.rejects(rt.restyle(request('a', 256, 256)), /model runtime is closed/);
    await rt.close();
    await rejected;
    assert.equal(rt.liveWorkers, 0);
    await assert.rejects(rt.restyle(request('a')), /model runtime is closed/);
  });

  it('close() leaves no worker threads: a process that loads, runs and closes exits by itself', async () => {
    const script = `
      const { ModelRuntime } = await import(${JSON.stringify(join(ROOT, 'dist/realtime/model-runtime.js'))});
      const workerEntry = new URL(${JSON.stringify(CRASH_ON_CUE_WORKER.href)});
      const rt = await ModelRuntime.load({ modelDir: ${JSON.stringify(SD_TINY)}, workers: 2, intraOpThreads: 1 });
      const data = new Uint8Array(64 * 64 * 3);
      await rt.restyle({ streamId: 's', image: { width: 64, height: 64, data }, style: '', prompt: '', strength: 0.5, steps: 1, seed: 1, consistency: 0 });
      await rt.close();
      console.log('closed');`;
    // A live worker thread would keep the event loop alive and the child would hit the timeout.
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
    assert.equal(stdout.trim(), 'closed');
  });

  it('fails to load a folder that is not a model, saying what is missing', async () => {
    await assert.rejects(ModelRuntime.load({ modelDir: join(ROOT, 'tests/unit') }), /neither manifest\.json .* nor model_index\.json/);
  });
});

describe('the default model (models/default)', () => {
  const skip = requireDefaultModel();

  it('loads as a style model at its native resolution', { skip }, async () => {
    const rt = await ModelRuntime.load({ modelDir: DEFAULT_MODEL, intraOpThreads: 2 });
    try {
      assert.equal(rt.info.conditioning, 'styles');
      assert.ok(rt.info.styles.length > 0);
      assert.ok(rt.info.styles.includes(rt.info.defaults.style));
      const { width, height } = rt.info;
      for (const style of rt.info.styles) {
        const res = await rt.restyle({
          ...request('d', width, height),
          style,
          steps: rt.info.defaults.steps,
          strength: rt.info.defaults.strength,
        });
        assert.deepEqual([res.image.width, res.image.height], [width, height], style);
      }
    } finally {
      await rt.close();
    }
  });

  it('runs every supported step count and 512×512', { skip }, async () => {
    const rt = await ModelRuntime.load({ modelDir: DEFAULT_MODEL, intraOpThreads: 2 });
    try {
      for (const steps of rt.info.steps) {
        const res = await rt.restyle({ ...request('d', rt.info.width, rt.info.height), style: rt.info.defaults.style, steps });
        assert.equal(res.image.data.length, rt.info.width * rt.info.height * 3);
      }
      const big = await rt.restyle({ ...request('d', 512, 512), style: rt.info.defaults.style });
      assert.deepEqual([big.image.width, big.image.height], [512, 512]);
    } finally {
      await rt.close();
    }
  });
});

describe('ModelRuntime shutdown under load', () => {
  // worker.terminate() while onnxruntime is inside a native call aborts the whole process ("terminate called
  // after throwing an instance of 'Napi::Error'"); close() and a worker's crash must end threads between runs.
  it('close() and worker crashes in the middle of a stream of requests never abort the process', async () => {
    const script = `
      const { ModelRuntime } = await import(${JSON.stringify(join(ROOT, 'dist/realtime/model-runtime.js'))});
      const workerEntry = new URL(${JSON.stringify(CRASH_ON_CUE_WORKER.href)});
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const req = () => ({ streamId: 's', image: { width: 128, height: 128, data: new Uint8Array(128 * 128 * 3) }, style: '', prompt: '', strength: 0.5, steps: 2, seed: 1, consistency: 0 });
      for (let round = 0; round < 3; round++) {
        const rt = await ModelRuntime.load({ modelDir: ${JSON.stringify(SD_TINY)}, intraOpThreads: 1, workerEntry });
        let stop = false;
        const traffic = (async () => { while (!stop) await rt.restyle(req()).catch(() => sleep(5)); })();
        for (let k = 0; k < 3; k++) {
          await sleep(30 + 40 * k);
          await rt.restyle({ ...req(), streamId: 'crash' }).catch(() => {});
          while (rt.liveWorkers === 0) await sleep(10);
        }
        await sleep(50 * round);
        await rt.close();
        stop = true;
        await traffic;
      }
      console.log('survived');`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 120_000 });
    assert.equal(stdout.trim(), 'survived');
  });
});

describe('ModelRuntime warm-up', () => {
  // onnxruntime's first run at a new input shape re-plans and re-allocates: warming up at the model's native size
  // left a stream served at another size, and its first switch to half resolution, to pay it on live frames.
  it("warms up at the served resolution and at its half, not at the model's native size", async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    const workerEntry = new URL('../support/recording-worker.js', import.meta.url);
    const rt = await ModelRuntime.load({
      modelDir: SD_TINY,
      intraOpThreads: 1,
      workerEntry,
      logger,
      servedResolution: { width: 128, height: 96 },
    });
    try {
      const warmUp = lines.filter((l) => l.startsWith(`restyle ${WARM_UP_STREAM} `));
      assert.ok(warmUp.length >= 3, `warm-up runs: ${lines.join(' | ')}`);
      assert.ok(
        warmUp.every((l) => l.includes(' 128x96 ')),
        `every warm-up frame is 128×96 (sd-tiny is 64×64 natively): ${warmUp.join(' | ')}`,
      );
      assert.ok(
        warmUp.some((l) => l.endsWith('scale 1')) && warmUp.some((l) => l.endsWith('scale 0.5')),
        `full and half: ${warmUp.join(' | ')}`,
      );
    } finally {
      await rt.close();
    }
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { latencyStats, runModelBench, type ModelBenchReport } from '../../bench/model-bench.js';

const SD_TINY = fileURLToPath(new URL('../../../tests/fixtures/sd-tiny', import.meta.url));

describe('model benchmark', () => {
  it('computes median and nearest-rank p95', () => {
    const s = latencyStats(Array.from({ length: 20 }, (_, i) => 20 - i)); // 1..20, shuffled order
    assert.equal(s.median, 10.5);
    assert.equal(s.p95, 19);
    assert.equal(s.min, 1);
    assert.equal(s.max, 20);
  });

  it('measures each stage at the native resolution and 512×512 and writes the JSON report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sds-bench-'));
    try {
      const out = join(dir, 'bench.json');
      const report = await runModelBench({ modelDir: SD_TINY, steps: 2, iterations: 3, warmup: 1, intraOpThreads: 1, out, print: false });
      assert.deepEqual(
        report.rows.map((r) => [r.width, r.height]),
        [
          [64, 64],
          [512, 512],
        ],
      );
      for (const row of report.rows) {
        assert.ok(row.stages.host.median >= 0, 'host time is total minus the model stages');
        for (const k of ['vae_encode', 'denoise', 'denoise_step', 'vae_decode', 'total'] as const) {
          assert.ok(row.stages[k].median > 0 && row.stages[k].p95 >= row.stages[k].median, `${k} at ${row.width}×${row.height}`);
        }
        assert.ok(Math.abs(row.stages.denoise_step.median * 2 - row.stages.denoise.median) < 1e-9);
      }
      const written = JSON.parse(readFileSync(out, 'utf8')) as ModelBenchReport;
      assert.equal(written.model, 'sd-tiny');
      assert.equal(written.rows.length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails instead of measuring the CPU under another name when --no-cpu-fallback is given', async () => {
    // No CUDA provider is installed here; with the fallback the run would silently be a CPU run.
    await assert.rejects(
      runModelBench({
        modelDir: SD_TINY,
        provider: 'cuda',
        fallbackToCpu: false,
        iterations: 1,
        warmup: 0,
        intraOpThreads: 1,
        print: false,
      }),
      /CPU fallback is disabled/,
    );
  });
});

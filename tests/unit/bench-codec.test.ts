// sds bench codec measures the host codecs everywhere and reports the NVIDIA ones as measured or unavailable, with
// FFmpeg's reason, instead of failing on a machine without them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCodecTable, runCodecBench } from '../../bench/codec-bench.js';

test('the software codecs are measured; hardware ones are measured or say why not', async () => {
  const options = { width: 64, height: 64, frames: 10 };
  const rows = await runCodecBench(options);
  const key = (r: (typeof rows)[number]) => `${r.codec} ${r.direction} ${r.implementation}`;
  assert.deepEqual(rows.map(key), [
    'VP8 encode software',
    'H264 encode software',
    'H264 encode nvenc',
    'VP8 decode software',
    'VP8 decode cuvid',
    'H264 decode software',
    'H264 decode cuvid',
  ]);
  for (const r of rows) {
    if (r.implementation === 'software') assert.ok(r.ms && r.ms.median > 0 && r.ms.p95 >= r.ms.median, `${key(r)} measured`);
    else assert.ok(r.ms || (r.unavailable && r.unavailable.length > 0), `${key(r)}: a figure or a reason`);
  }
  assert.match(formatCodecTable(rows, options), /\| H264 \| encode \| nvenc \| (unavailable: .+|\d+\.\d+ \| \d+\.\d+) \|/);
});

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { forbiddenEdges, importGraph, importsOf, repoRoot } from '../support/import-graph.js';

// dist/tests/unit/ → the repository root, where the .ts sources are.
const ROOT = repoRoot(import.meta.url, 3);

test('every .ts file keeps the folder rules (models ↛ realtime/stream/server, realtime ↛ stream/server, stream ↛ realtime/server, client ↛ server side, nothing ↛ tests)', () => {
  const edges = importGraph(ROOT);
  assert.ok(edges.length > 200, `read ${edges.length} import edges; the walk missed the sources`);
  const bad = forbiddenEdges(edges).map((v) => `${v.from} → ${v.to}  (${v.why})`);
  assert.deepEqual(bad, []);
});

test('every relative import names a file that exists (the reader resolves what it checks)', () => {
  // This file's own synthetic sources are strings, not imports.
  const real = importGraph(ROOT).filter((e) => e.from !== 'tests/unit/import-graph.test.ts');
  const missing = real.filter((e) => !existsSync(join(ROOT, e.to)) && !existsSync(join(ROOT, e.to.replace(/\.ts$/, '.js'))));
  assert.deepEqual(missing, []);
});

test('each forbidden kind of edge is caught', () => {
  const cases: Array<[string, string]> = [
    ['models/img2img.ts', 'realtime/latent-cache.ts'],
    ['models/worker/x.ts', 'stream/egress.ts'],
    ['models/manifest.ts', 'server/config.ts'],
    ['realtime/restyle-engine.ts', 'stream/egress.ts'],
    ['realtime/restyle-engine.ts', 'server/sessions.ts'],
    ['stream/egress.ts', 'realtime/restyle-engine.ts'],
    ['stream/egress.ts', 'server/metrics.ts'],
    ['client/src/app.ts', 'server/control-message.ts'],
    ['client/src/app.ts', 'stream/sdp-offer.ts'],
    ['bench/browser-bench.ts', 'tests/browser/y4m-clip.ts'],
    ['bin/sds.ts', 'tests/support/until.ts'],
    ['server/server.ts', 'tests/support/until.ts'],
    ['frame/clock.ts', 'realtime/params.ts'],
  ];
  for (const [from, to] of cases) assert.equal(forbiddenEdges([{ from, to }]).length > 0, true, `${from} → ${to} passed`);
});

test('allowed edges pass', () => {
  const cases: Array<[string, string]> = [
    ['realtime/restyle-engine.ts', 'models/img2img.ts'],
    ['models/img2img.ts', 'frame/clock.ts'],
    ['stream/egress.ts', 'frame/video-frame.ts'],
    ['server/sessions.ts', 'stream/egress.ts'],
    ['server/sessions.ts', 'realtime/restyle-engine.ts'],
    ['bench/e2e-bench.ts', 'server/server.ts'],
    ['tests/unit/x.test.ts', 'bench/bench-args.ts'],
    ['client/src/app.ts', 'client/src/protocol.ts'],
  ];
  assert.deepEqual(forbiddenEdges(cases.map(([from, to]) => ({ from, to }))), []);
});

test('the reader finds static, re-exported, dynamic and worker-URL imports, and skips packages', () => {
  const src = [
    "import type { A } from '../realtime/frame.js';",
    "import {\n  b,\n  c,\n} from './b.js';",
    "export { d } from '../stream/d.js';",
    "const t = await import('../server/t.js');",
    "const W = new URL('./worker/w.js', import.meta.url);",
    "import 'side-effect-package';",
    "import fs from 'node:fs';",
  ].join('\n');
  assert.deepEqual(importsOf(src, 'models/x.ts').sort(), [
    'models/b.ts',
    'models/worker/w.ts',
    'realtime/frame.ts',
    'server/t.ts',
    'stream/d.ts',
  ]);
});

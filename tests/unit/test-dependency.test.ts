// The suite's require-or-skip (tests/support/test-dependency.ts), run as the suite runs it: a test file whose
// dependency is missing skips with the reason locally, and under CI=true fails the run naming what is missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const dir = mkdtempSync(path.join(tmpdir(), 'sds-test-dependency-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const helper = new URL('../support/test-dependency.js', import.meta.url).href;
const file = path.join(dir, 'needs-widget.test.mjs');
writeFileSync(
  file,
  `import { test } from 'node:test';
import { requireOrSkip } from ${JSON.stringify(helper)};
const skip = requireOrSkip('Widget', 'widget is not installed (apt-get install widget)');
test('uses the widget', { skip }, () => { throw new Error('ran without its dependency'); });
`,
);

function run(env: Record<string, string | undefined>): { status: number | null; out: string } {
  // NODE_TEST_CONTEXT would make the child report to this runner instead of running its own file.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', file], {
    encoding: 'utf8',
    env: { ...inherited, ...env },
    timeout: 60_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('locally a missing dependency skips its tests with the reason, and the run passes', () => {
  const { status, out } = run({ CI: '' });
  assert.equal(status, 0, out);
  assert.match(out, /uses the widget.*# widget is not installed/);
  assert.doesNotMatch(out, /test dependency: Widget/);
});

test('under CI=true the run fails with one test naming what is missing; the tests that need it still skip', () => {
  const { status, out } = run({ CI: 'true' });
  assert.equal(status, 1, out);
  assert.match(out, /test dependency: Widget/);
  assert.match(out, /widget is not installed \(apt-get install widget\) \(CI=true: a missing test dependency fails the run/);
  assert.doesNotMatch(out, /ran without its dependency/);
});

// `npm test`: runs every compiled test file under node --test, one file at a time. Node 20 accepts a directory
// there and Node 21+ does not (it reads globs, which Node 20 does not expand), so the files are listed here.
// Arguments narrow the run to files whose path contains one of them: `npm test -- unit/ cluster`.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TESTS_DIR = path.dirname(fileURLToPath(import.meta.url));

/** Every *.test.js below `dir`, sorted, so every Node version runs the same files in the same order. */
export function testFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...testFiles(full));
    else if (entry.isFile() && entry.name.endsWith('.test.js')) found.push(full);
  }
  return found.sort();
}

const filters = process.argv.slice(2);
const files = testFiles(TESTS_DIR).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  process.stderr.write(`no test files under ${TESTS_DIR} match ${filters.join(', ')} (did the build run?)\n`);
  process.exit(1);
}
process.stdout.write(
  `node ${process.version}: ${files.length} test files${process.env.CI === 'true' ? ' (CI=true: a missing test dependency fails)' : ''}\n`,
);
const args = ['--test', '--test-concurrency=1', '--test-timeout=240000', '--test-reporter=spec', ...files];
const child = spawn(process.execPath, args, { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

// Builds the browser client: bundles client/src entry points (the two pages and the glass-to-glass encoded-
// transform worker) with esbuild and copies client/public
// into dist/client/public, which the server serves at `/` (index.html) and `/overlay/:name` (overlay.html).
// Compiled by tsc to dist/client/build.js and run by `npm run build`; paths resolve from the repo root.
import { build } from 'esbuild';
import { cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sourceDir = path.join(repoRoot, 'client');
const publicOut = path.join(repoRoot, 'dist', 'client', 'public');

const entryPoints = ['app', 'overlay', 'glass-worker'].map((name) => path.join(sourceDir, 'src', `${name}.ts`));

export async function buildClient(): Promise<void> {
  await rm(publicOut, { recursive: true, force: true });
  await mkdir(publicOut, { recursive: true });
  await cp(path.join(sourceDir, 'public'), publicOut, { recursive: true });
  await build({
    entryPoints,
    outdir: publicOut,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
    // The browser code has its own tsconfig (DOM lib); keep esbuild from reading the server's.
    tsconfig: path.join(sourceDir, 'tsconfig.json'),
  });
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  buildClient().then(
    () => console.log(`client built into ${path.relative(repoRoot, publicOut)}`),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}

// `sds models pull` against a local server that speaks the Hub's endpoints (tests/support/fake-hub.ts), reached
// through HF_ENDPOINT and serving the committed sd-tiny fixture: a clean pull into HF_HOME's cache that the
// server then loads as --model hf:<repo>; an interrupted pull resumed with a range request; a corrupted file
// refused; an unknown repository named in a clear error.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cachedSnapshot, repoCacheDir } from '../../models/hub-cache.js';
import { pullModel, type PullProgress } from '../../models/hub-download.js';
import { ConfigError, PACKAGE_ROOT, parseServeConfig } from '../../server/config.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { SD_TINY_MODEL, startTestServer } from '../support/server-harness.js';

const REPO = 'sds-test/sd-tiny';
const TOKEN = 'hf_pulltesttoken';
let hub: FakeHub;
const homes: string[] = [];

before(async () => {
  hub = await startFakeHub({ [REPO]: SD_TINY_MODEL });
});
after(async () => {
  await hub.close();
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

/** A fresh HF_HOME for each case. */
function hfEnv(): NodeJS.ProcessEnv {
  const home = mkdtempSync(path.join(tmpdir(), 'sds-hf-'));
  homes.push(home);
  return { HF_ENDPOINT: hub.url, HF_HOME: home, HF_TOKEN: TOKEN };
}

function fixtureFiles(): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(SD_TINY_MODEL, rel), { withFileTypes: true })) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(name);
      else out.push(name);
    }
  };
  walk('');
  return out.sort();
}

test("a clean pull fetches only the layout's files into the Hub cache, verified, and the server loads it as hf:<repo>", async () => {
  const env = hfEnv();
  const progress: PullProgress[] = [];
  const first = hub.requests.length;
  const result = await pullModel({ repo: REPO, revision: 'main' }, { env, onProgress: (p) => progress.push(p) });

  const root = repoCacheDir(path.join(env.HF_HOME!, 'hub'), REPO);
  assert.equal(result.commit, hub.commitOf(REPO));
  assert.equal(result.snapshot, path.join(root, 'snapshots', result.commit));
  assert.deepEqual(result.files.map((f) => f.path).sort(), fixtureFiles(), 'every fixture file, and no README or safetensors');
  for (const file of fixtureFiles()) {
    const link = path.join(result.snapshot, file);
    assert.ok(lstatSync(link).isSymbolicLink(), `${file} is a link into blobs/`);
    assert.ok(!path.isAbsolute(readlinkSync(link)), "relative, as the Hub's clients make them");
    assert.ok(readFileSync(link).equals(readFileSync(path.join(SD_TINY_MODEL, file))), `${file} arrived intact`);
  }
  assert.equal(readFileSync(path.join(root, 'refs', 'main'), 'utf8'), result.commit);
  assert.ok(
    existsSync(
      path.join(
        root,
        'blobs',
        (await import('node:crypto'))
          .createHash('sha256')
          .update(readFileSync(path.join(SD_TINY_MODEL, 'unet/model.onnx')))
          .digest('hex'),
      ),
    ),
    'LFS blobs are named by their sha256',
  );

  const mine = hub.requests.slice(first);
  assert.ok(
    mine.every((r) => r.authorization === `Bearer ${TOKEN}`),
    'HF_TOKEN goes with every request',
  );
  assert.ok(!mine.some((r) => /README|safetensors/.test(r.path)), 'files the ONNX layout does not need are not fetched');
  const unet = progress.filter((p) => p.file === 'unet/model.onnx');
  assert.equal(unet.at(-1)?.bytes, statSync(path.join(SD_TINY_MODEL, 'unet/model.onnx')).size, "progress reaches the file's size");

  // A second pull finds everything in the cache.
  const again = await pullModel({ repo: REPO, revision: 'main' }, { env });
  assert.ok(again.files.every((f) => !f.fetched));

  const config = parseServeConfig(['--model', `hf:${REPO}`], env);
  assert.equal(config.modelDir, result.snapshot);
  assert.equal(cachedSnapshot({ repo: REPO, revision: result.commit }, path.join(env.HF_HOME!, 'hub')), result.snapshot);
  const server = await startTestServer({ modelDir: config.modelDir });
  try {
    const res = await fetch(`${server.url}/api/model`);
    assert.equal(res.status, 200, 'the server serves the pulled model');
    assert.ok(server.restyler.info.width > 0);
  } finally {
    await server.close();
  }
});

test('an interrupted pull leaves a partial file, no usable model, and resumes with a range request', async () => {
  const env = hfEnv();
  const file = 'text_encoder/model.onnx';
  const size = statSync(path.join(SD_TINY_MODEL, file)).size;
  hub.cutNext(file, 50_000);
  await assert.rejects(
    pullModel({ repo: REPO, revision: 'main' }, { env }),
    /text_encoder\/model\.onnx: the download (was interrupted after|ended after) \d+ of 159475 bytes.*run the same command again to resume/,
  );
  const root = repoCacheDir(path.join(env.HF_HOME!, 'hub'), REPO);
  const partial = readdirSync(path.join(root, 'blobs')).find((f) => f.endsWith('.incomplete'));
  assert.ok(partial, 'the part that arrived is kept');
  const kept = statSync(path.join(root, 'blobs', partial)).size;
  assert.ok(kept > 0 && kept <= 50_000, `${kept} bytes kept`);
  assert.equal(existsSync(path.join(root, 'refs', 'main')), false);
  assert.throws(
    () => parseServeConfig(['--model', `hf:${REPO}`], env),
    (err: unknown) => err instanceof ConfigError && /sds models pull sds-test\/sd-tiny/.test(err.message),
  );

  const first = hub.requests.length;
  const progress: PullProgress[] = [];
  const result = await pullModel({ repo: REPO, revision: 'main' }, { env, onProgress: (p) => progress.push(p) });
  const ranged = hub.requests.slice(first).filter((r) => r.path.endsWith(`/resolve/${result.commit}/${file}`) && r.range !== 'bytes=0-0');
  assert.deepEqual(
    ranged.map((r) => r.range),
    [`bytes=${kept}-${size - 1}`],
    'only the missing bytes are asked for',
  );
  assert.equal(progress.find((p) => p.file === file)?.resumedFrom, kept);
  assert.ok(
    readFileSync(path.join(result.snapshot, file)).equals(readFileSync(path.join(SD_TINY_MODEL, file))),
    'the resumed file is whole',
  );
  assert.equal(readdirSync(path.join(root, 'blobs')).filter((f) => f.endsWith('.incomplete')).length, 0);
});

test('a corrupted file is refused: not kept, and the model is not usable', async () => {
  const corruptHub = await startFakeHub({ [REPO]: SD_TINY_MODEL });
  try {
    for (const [file, kind] of [
      ['vae_decoder/model.onnx', 'sha256'],
      ['unet/config.json', 'git blob sha1'],
    ] as const) {
      const env: NodeJS.ProcessEnv = { ...hfEnv(), HF_ENDPOINT: corruptHub.url };
      corruptHub.corrupt(file);
      await assert.rejects(
        pullModel({ repo: REPO, revision: 'main' }, { env }),
        new RegExp(
          `${file.replace(/[./]/g, '\\$&')} is corrupted: its ${kind} is [0-9a-f]+, but the Hub says [0-9a-f]+; the file was not kept`,
        ),
      );
      const root = repoCacheDir(path.join(env.HF_HOME!, 'hub'), REPO);
      assert.equal(
        readdirSync(path.join(root, 'blobs')).filter((f) => f.endsWith('.incomplete')).length,
        0,
        'no partial file to resume from',
      );
      assert.equal(existsSync(path.join(root, 'snapshots', corruptHub.commitOf(REPO), file)), false);
      assert.equal(existsSync(path.join(root, 'refs', 'main')), false);
    }
  } finally {
    await corruptHub.close();
  }
});

test('an unknown repository is a clear error naming it', async () => {
  await assert.rejects(
    pullModel({ repo: 'nobody/nothing', revision: 'main' }, { env: hfEnv() }),
    /no model "nobody\/nothing" \(revision main\) at http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\): check the repository id/,
  );
});

test('the CLI: sds models pull prints progress and how to serve; a missing model tells how to pull it', async () => {
  const env = { ...process.env, ...hfEnv() };
  const missing = await sds(['serve', '--model', `hf:${REPO}`], env);
  assert.equal(missing.status, 2);
  assert.match(
    missing.stderr,
    /--model hf:sds-test\/sd-tiny: not in the Hugging Face cache .*download it first with: sds models pull sds-test\/sd-tiny/,
  );
  const pulled = await sds(['models', 'pull', REPO], env);
  assert.equal(pulled.status, 0, pulled.stderr);
  assert.match(pulled.stderr, /\[14\/14\] model_index\.json \[#+\] 100%/);
  assert.match(pulled.stdout, /serve it with: sds serve --model hf:sds-test\/sd-tiny/);
  const unknown = await sds(['models', 'pull', 'nobody/nothing'], env);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^sds: no model "nobody\/nothing"/m);
});

/** The CLI as a child process; asynchronous, because the fake hub it talks to runs in this process. */
function sds(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(PACKAGE_ROOT, 'dist', 'bin', 'sds.js'), ...args],
      { env, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
      },
    );
  });
}

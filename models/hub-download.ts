// `sds models pull`: fetch a diffusers/optimum ONNX export from the Hugging Face Hub into the Hub's cache
// (models/hub-cache.ts), with the Hub's own client (@huggingface/hub) for every request. Only the files the ONNX
// layout needs come down; a file interrupted midway resumes from its `.incomplete` part (an HTTP range through
// the client's blob slicing); each file is checked against the Hub's etag (sha256 for LFS files, the git blob
// sha1 for the others) before it enters the cache, and a mismatch is refused.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { downloadFile, fileDownloadInfo, HubApiError, modelInfo, type FileDownloadInfoOutput } from '@huggingface/hub';
import { hubCacheDir, hubEndpoint, repoCacheDir, type HubModelRef } from './hub-cache.js';

/** The component folders of the diffusers/optimum layout that the model loader reads (models/manifest.ts). */
const COMPONENT_FOLDERS = ['unet', 'vae_encoder', 'vae_decoder', 'text_encoder', 'text_encoder_2', 'tokenizer', 'tokenizer_2', 'scheduler'];
/** Weights in other formats that exports often carry beside the ONNX files; never needed here. */
const OTHER_WEIGHTS = /\.(safetensors|bin|ckpt|pt|pth|msgpack|h5|ot|gguf)$/i;

export class PullError extends Error {
  override name = 'PullError';
}

export interface PullProgress {
  file: string;
  /** Bytes of this file on disk (a resumed file starts above 0). */
  bytes: number;
  size: number;
  /** Index of this file among those to fetch, and how many there are. */
  index: number;
  count: number;
  resumedFrom: number;
}

export interface PullOptions {
  /** HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE / XDG_CACHE_HOME, as the Hub's clients read them. */
  env?: NodeJS.ProcessEnv;
  onProgress?(progress: PullProgress): void;
  /** A file already in the cache (skipped). */
  onCached?(file: string, size: number): void;
}

export interface PullResult {
  snapshot: string;
  commit: string;
  files: Array<{ path: string; size: number; fetched: boolean }>;
}

/** Which files of a repository's listing the ONNX layout needs. */
export function layoutFiles(files: readonly string[]): string[] {
  return files.filter(
    (f) => f === 'model_index.json' || (COMPONENT_FOLDERS.includes(f.split('/')[0]!) && f.includes('/') && !OTHER_WEIGHTS.test(f)),
  );
}

export async function pullModel(ref: HubModelRef, options: PullOptions = {}): Promise<PullResult> {
  const env = options.env ?? process.env;
  const hubUrl = hubEndpoint(env);
  const accessToken = env.HF_TOKEN || undefined;
  if (accessToken && !accessToken.startsWith('hf_'))
    throw new PullError('HF_TOKEN must be a Hugging Face access token (they start with hf_)');
  const credentials = accessToken ? { accessToken } : {};

  const info = await modelInfo({
    name: ref.repo,
    revision: ref.revision,
    hubUrl,
    ...credentials,
    additionalFields: ['sha', 'filePaths'],
  }).catch((err: unknown) => {
    throw explainHubError(err, ref, hubUrl);
  });
  const commit = (info as { sha?: string }).sha;
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) throw new PullError(`${hubUrl} did not say which commit ${ref.repo}@${ref.revision} is`);
  const wanted = layoutFiles((info as { filePaths?: string[] }).filePaths ?? []);
  if (!wanted.includes('model_index.json')) {
    throw new PullError(
      `${ref.repo} is not a diffusers/optimum ONNX export: it has no model_index.json (README "Models" names repositories that are)`,
    );
  }
  if (!wanted.some((f) => f.endsWith('.onnx')))
    throw new PullError(`${ref.repo} has a model_index.json but no .onnx files: it is not an ONNX export`);
  // model_index.json last: a snapshot is only usable once it is there (models/hub-cache.ts cachedSnapshot).
  const order = [...wanted.filter((f) => f !== 'model_index.json'), 'model_index.json'];

  const root = repoCacheDir(hubCacheDir(env), ref.repo);
  const snapshot = path.join(root, 'snapshots', commit);
  const files: PullResult['files'] = [];
  for (const [index, file] of order.entries()) {
    const download = await fileDownloadInfo({ repo: ref.repo, path: file, revision: commit, hubUrl, ...credentials }).catch(
      (err: unknown) => {
        throw explainHubError(err, ref, hubUrl, file);
      },
    );
    if (!download) throw new PullError(`${ref.repo}@${commit.slice(0, 12)} lists ${file} but the Hub has no such file`);
    const check = integrityCheck(download);
    const blob = path.join(root, 'blobs', check.name);
    const link = path.join(snapshot, file);
    let fetched = false;
    if (existsSync(blob) && (await stat(blob)).size === download.size) {
      options.onCached?.(file, download.size);
    } else {
      await fetchBlob({
        ref,
        commit,
        file,
        download,
        check,
        blob,
        hubUrl,
        credentials,
        index,
        count: order.length,
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
      fetched = true;
    }
    await linkInto(blob, link);
    files.push({ path: file, size: download.size, fetched });
  }
  // Written last: until then the model is not "in the cache" (an interrupted pull is resumed, not used).
  if (ref.revision !== commit) {
    await mkdir(path.join(root, 'refs', path.dirname(ref.revision)), { recursive: true });
    await writeFile(path.join(root, 'refs', ref.revision), commit);
  }
  return { snapshot, commit, files };
}

interface IntegrityCheck {
  /** The blob's name in the cache: the Hub's etag, as its other clients name it. */
  name: string;
  /** A hash primed for this file, or undefined when the etag is not a content hash (only the size is checked). */
  start(): Hash | undefined;
  expected: string;
  kind: 'sha256' | 'git-sha1' | 'size';
}

/**
 * The Hub's etag of an LFS file is its sha256 (X-Linked-Etag); of any other file, its git blob id: the sha1 of
 * "blob <size>\0" followed by the contents.
 */
function integrityCheck(download: FileDownloadInfoOutput): IntegrityCheck {
  const etag = download.etag.replace(/^W\//, '').replace(/"/g, '');
  // A Xet file hash is 64 hex digits too, but not a sha256 of the contents: never check against it.
  const xetHash = download.xet && etag === download.xet.hash;
  if (/^[0-9a-f]{64}$/.test(etag) && !xetHash) return { name: etag, expected: etag, kind: 'sha256', start: () => createHash('sha256') };
  if (/^[0-9a-f]{40}$/.test(etag)) {
    return { name: etag, expected: etag, kind: 'git-sha1', start: () => createHash('sha1').update(`blob ${download.size}\0`) };
  }
  return { name: etag.replace(/[^\w.-]/g, '_'), expected: etag, kind: 'size', start: () => undefined };
}

async function fetchBlob(job: {
  ref: HubModelRef;
  commit: string;
  file: string;
  download: FileDownloadInfoOutput;
  check: IntegrityCheck;
  blob: string;
  hubUrl: string;
  credentials: { accessToken?: string };
  index: number;
  count: number;
  onProgress?(progress: PullProgress): void;
}): Promise<void> {
  const { file, download, check, blob } = job;
  const partial = `${blob}.incomplete`;
  await mkdir(path.dirname(blob), { recursive: true });
  let have = existsSync(partial) ? (await stat(partial)).size : 0;
  if (have > download.size) {
    await unlink(partial);
    have = 0;
  }
  const hash = check.start();
  // A resumed file's hash covers the part already on disk first.
  if (hash && have > 0) for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
  const report = (bytes: number): void =>
    job.onProgress?.({ file, bytes, size: download.size, index: job.index, count: job.count, resumedFrom: have });
  report(have);
  if (have < download.size) {
    const whole = await downloadFile({
      repo: job.ref.repo,
      path: file,
      revision: job.commit,
      hubUrl: job.hubUrl,
      downloadInfo: download,
      ...job.credentials,
    });
    if (!whole) throw new PullError(`${file}: the Hub has no such file`);
    // The client's blob slice asks for the missing bytes only (an HTTP Range request).
    const rest = have > 0 ? whole.slice(have, download.size) : whole;
    const out = createWriteStream(partial, { flags: have > 0 ? 'a' : 'w' });
    let bytes = have;
    try {
      for await (const chunk of rest.stream() as unknown as AsyncIterable<Uint8Array>) {
        hash?.update(chunk);
        bytes += chunk.length;
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        report(bytes);
      }
    } catch (err) {
      throw new PullError(
        `${file}: the download was interrupted after ${bytes} of ${download.size} bytes (${(err as Error).message}); ` +
          `run the same command again to resume from there`,
      );
    } finally {
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
    if (bytes !== download.size) {
      throw new PullError(`${file}: the download ended after ${bytes} of ${download.size} bytes; run the same command again to resume`);
    }
  }
  const actual = hash?.digest('hex');
  if (actual !== undefined && actual !== check.expected) {
    // A part that does not match cannot be resumed into a good file: start over next time.
    await rm(partial, { force: true });
    throw new PullError(
      `${file} is corrupted: its ${check.kind === 'sha256' ? 'sha256' : 'git blob sha1'} is ${actual}, but the Hub says ${check.expected}; ` +
        `the file was not kept (run the pull again; if it repeats, the mirror at HF_ENDPOINT serves a bad copy)`,
    );
  }
  const size = (await stat(partial)).size;
  if (size !== download.size) {
    await rm(partial, { force: true });
    throw new PullError(`${file}: ${size} bytes arrived, the Hub says ${download.size}; the file was not kept`);
  }
  await rename(partial, blob);
}

/** snapshots/<commit>/<file> → a relative symlink to blobs/<etag>, as the Hub's clients make it. */
async function linkInto(blob: string, link: string): Promise<void> {
  await mkdir(path.dirname(link), { recursive: true });
  await rm(link, { force: true });
  await symlink(path.relative(path.dirname(link), blob), link);
}

function explainHubError(err: unknown, ref: HubModelRef, hubUrl: string, file?: string): Error {
  if (err instanceof PullError) return err;
  if (err instanceof HubApiError) {
    if (!file && (err.statusCode === 404 || err.statusCode === 401)) {
      // The Hub answers 401 rather than 404 for a repository that does not exist, to an anonymous client.
      return new PullError(
        `no model "${ref.repo}" (revision ${ref.revision}) at ${hubUrl} (HTTP ${err.statusCode}): check the repository id and ` +
          `revision; a private or gated repository needs HF_TOKEN (a token with read access)`,
      );
    }
    if (err.statusCode === 401 || err.statusCode === 403) {
      return new PullError(
        `${hubUrl} refused ${file ?? ref.repo} (HTTP ${err.statusCode}): set HF_TOKEN to a token that may read ${ref.repo} (accept its licence on the Hub first if it is gated)`,
      );
    }
    return new PullError(`${hubUrl}: ${file ? `${file}: ` : ''}HTTP ${err.statusCode}: ${err.message}`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new PullError(`cannot reach ${hubUrl}${file ? ` for ${file}` : ''} (${message}); check the network, or HF_ENDPOINT for a mirror`);
}

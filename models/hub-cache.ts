// Where Hugging Face Hub models live on disk: the Hub's own cache layout (as its Python and JS clients use it),
// so a model pulled by `sds models pull`, huggingface-cli or diffusers is found by all of them:
//   <cache>/models--<org>--<name>/blobs/<etag>            file contents, named by their Hub etag
//   <cache>/models--<org>--<name>/snapshots/<commit>/<path> relative symlinks into blobs/
//   <cache>/models--<org>--<name>/refs/<revision>          the commit a branch or tag named, once pulled in full
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** What `hf:<org>/<name>[@<revision>]` names. */
export interface HubModelRef {
  repo: string;
  revision: string;
}

export const DEFAULT_REVISION = 'main';
const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** Parses `org/name` or `org/name@revision` (the part after `hf:`); undefined when it is not a repo id. */
export function parseHubModelRef(text: string): HubModelRef | undefined {
  const at = text.indexOf('@');
  const repo = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : text.slice(at + 1);
  if (!REPO_ID.test(repo) || repo.includes('..') || revision === '' || /[\s\\]|\.\./.test(revision)) return undefined;
  return { repo, revision };
}

/**
 * The hub cache folder, with the same precedence as the Hub's own clients: HF_HUB_CACHE, then HF_HOME/hub,
 * then XDG_CACHE_HOME/huggingface/hub, then ~/.cache/huggingface/hub.
 */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return path.join(env.HF_HOME, 'hub');
  return path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'huggingface', 'hub');
}

/** The Hub's endpoint (HF_ENDPOINT, for a mirror or a private hub), without a trailing slash. */
export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

export function repoCacheDir(cacheDir: string, repo: string): string {
  return path.join(cacheDir, `models--${repo.split('/').join('--')}`);
}

/**
 * The snapshot folder of a fully pulled model, or undefined when it is not in the cache (never pulled, or
 * its pull did not finish: refs/<revision> is written last).
 */
export function cachedSnapshot(ref: HubModelRef, cacheDir: string): string | undefined {
  const root = repoCacheDir(cacheDir, ref.repo);
  const refFile = path.join(root, 'refs', ref.revision);
  let commit: string | undefined;
  if (existsSync(refFile)) commit = readFileSync(refFile, 'utf8').trim();
  else if (COMMIT.test(ref.revision)) commit = ref.revision;
  if (!commit || !COMMIT.test(commit)) return undefined;
  const snapshot = path.join(root, 'snapshots', commit);
  return existsSync(path.join(snapshot, 'model_index.json')) ? snapshot : undefined;
}

// `sds models pull <org>/<name> [--revision R]`: download a diffusers/optimum ONNX export from the Hugging Face
// Hub into its cache (models/hub-download.ts) with a progress bar, then say how to serve it.
import { parseArgs } from 'node:util';
import { DEFAULT_REVISION, hubCacheDir, hubEndpoint, parseHubModelRef } from '../models/hub-cache.js';
import { pullModel, type PullProgress } from '../models/hub-download.js';
import { ConfigError } from './config-error.js';

export const MODELS_HELP = `sds models pull <org>/<name> [--revision R]
  Downloads the files of a diffusers/optimum ONNX export (model_index.json and the unet, vae_*, text_encoder*,
  tokenizer* and scheduler folders; no other weights) from the Hugging Face Hub into its cache, resuming an
  interrupted download and checking every file against the Hub's sha256. Then: sds serve --model hf:<org>/<name>
  Environment: HF_ENDPOINT (a mirror; default https://huggingface.co), HF_TOKEN (private or gated repositories),
  HF_HOME or HF_HUB_CACHE (where the cache is; default ~/.cache/huggingface/hub).
  Known-good: see README "Models".
`;

export async function runModelsCommand(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  out: NodeJS.WriteStream = process.stderr,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { revision: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [verb, repo, ...extra] = positionals;
  if (values.help || verb === undefined) {
    process.stdout.write(MODELS_HELP);
    return values.help ? 0 : 2;
  }
  if (verb !== 'pull') throw new ConfigError(`unknown command "models ${verb}" (sds models pull <org>/<name>)`);
  if (!repo || extra.length) throw new ConfigError('sds models pull takes one repository id, e.g. sds models pull onnxruntime/sd-turbo');
  const ref = parseHubModelRef(repo.replace(/^hf:/, ''));
  if (!ref || ref.revision !== DEFAULT_REVISION)
    throw new ConfigError(`"${repo}" is not a Hub repository id like onnxruntime/sd-turbo (give a revision with --revision)`);
  if (values.revision) ref.revision = values.revision;

  out.write(`pulling ${ref.repo}@${ref.revision} from ${hubEndpoint(env)} into ${hubCacheDir(env)}\n`);
  const bar = new ProgressBar(out);
  const result = await pullModel(ref, {
    env,
    onProgress: (p) => bar.update(p),
    onCached: (file, size) => out.write(`  ${file} (${formatBytes(size)}) already in the cache\n`),
  }).finally(() => bar.end());
  const fetched = result.files.filter((f) => f.fetched);
  const total = result.files.reduce((s, f) => s + f.size, 0);
  out.write(
    `${result.files.length} files (${formatBytes(total)}; ${fetched.length} downloaded), commit ${result.commit.slice(0, 12)}: ${result.snapshot}\n`,
  );
  const at = ref.revision === DEFAULT_REVISION ? '' : `@${ref.revision}`;
  process.stdout.write(`serve it with: sds serve --model hf:${ref.repo}${at}\n`);
  return 0;
}

/** One line per file: redrawn in place on a terminal, printed once complete otherwise (logs, CI). */
class ProgressBar {
  private current: PullProgress | undefined;
  private lastDraw = 0;
  private readonly started = Date.now();

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(p: PullProgress): void {
    if (this.current && this.current.file !== p.file) this.finish();
    this.current = p;
    const now = Date.now();
    if (this.out.isTTY && (now - this.lastDraw > 100 || p.bytes === p.size)) {
      this.lastDraw = now;
      this.out.write(`\r${this.line(p)}\x1b[K`);
    }
    if (p.bytes === p.size) this.finish();
  }

  end(): void {
    if (this.current && this.current.bytes !== this.current.size && this.out.isTTY) this.out.write('\n');
    this.current = undefined;
  }

  private finish(): void {
    const p = this.current;
    if (!p) return;
    this.out.write(this.out.isTTY ? '\n' : `${this.line(p)}\n`);
    this.current = undefined;
  }

  private line(p: PullProgress): string {
    const width = 24;
    const fraction = p.size === 0 ? 1 : p.bytes / p.size;
    const filled = Math.round(fraction * width);
    const seconds = Math.max(0.001, (Date.now() - this.started) / 1000);
    const resumed = p.resumedFrom > 0 ? ` (resumed at ${formatBytes(p.resumedFrom)})` : '';
    return `  [${p.index + 1}/${p.count}] ${p.file} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(p.bytes)}/${formatBytes(p.size)}${resumed} ${formatBytes((p.bytes - p.resumedFrom) / seconds)}/s`;
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

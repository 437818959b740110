// The folder rules of ../shared/DESIGN.md as data, and a reader of the import graph they are checked
// against: every relative import, re-export, dynamic import() and worker URL of every .ts file, as an
// edge between two repository paths. Kept free of the product so a test can feed it synthetic edges.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';

export interface ImportEdge {
  /** Repository-relative paths with forward slashes, e.g. 'models/img2img.ts'. */
  from: string;
  to: string;
}

interface FolderRule {
  from: (path: string) => boolean;
  to: (path: string) => boolean;
  why: string;
}

const under =
  (...folders: string[]) =>
  (path: string) =>
    folders.some((f) => path.startsWith(`${f}/`));
const anything = () => true;

/** Each rule forbids an edge from a file its `from` matches to a file its `to` matches. */
export const FOLDER_RULES: readonly FolderRule[] = [
  { from: under('frame'), to: (p) => !p.startsWith('frame/'), why: 'frame/ is the bottom: it imports no other folder' },
  { from: under('models'), to: under('realtime', 'stream', 'server', 'bench', 'bin', 'client'), why: 'models/ knows nothing of streams' },
  { from: under('realtime'), to: under('stream', 'server', 'bench', 'bin', 'client'), why: 'realtime/ is transport-agnostic' },
  {
    from: under('stream'),
    to: under('realtime', 'server', 'bench', 'bin', 'client'),
    why: "stream/ imports neither realtime's engine nor server/",
  },
  { from: under('client'), to: (p) => !p.startsWith('client/'), why: 'client/ imports no server-side code' },
  { from: (p) => !p.startsWith('tests/'), to: under('tests'), why: 'nothing outside tests/ imports tests/' },
  {
    from: under('server', 'stream', 'realtime', 'models', 'frame'),
    to: under('bench', 'bin'),
    why: 'the product imports no bench or CLI code',
  },
];

export interface FolderViolation extends ImportEdge {
  why: string;
}

export function forbiddenEdges(edges: readonly ImportEdge[], rules: readonly FolderRule[] = FOLDER_RULES): FolderViolation[] {
  const out: FolderViolation[] = [];
  for (const e of edges) for (const r of rules) if (r.from(e.from) && r.to(e.to)) out.push({ ...e, why: r.why });
  return out;
}

// `import … from '…'`, `export … from '…'`, `import '…'`, `import('…')` and `new URL('…', import.meta.url)`.
const SPECIFIERS = [
  /\b(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/g,
  /\bimport\s*['"]([^'"]+)['"]/g,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\bnew URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url/g,
];

/** The repository-relative targets of one file's relative imports (package imports are not edges). */
export function importsOf(source: string, fromPath: string): string[] {
  const targets = new Set<string>();
  for (const re of SPECIFIERS) {
    for (const m of source.matchAll(re)) {
      const spec = m[1]!;
      // Relative module specifiers only (NodeNext spells them .js); a URL to a data file is no import.
      if (!spec.startsWith('.') || !/\.(js|json)$/.test(spec)) continue;
      const target = posix.normalize(posix.join(posix.dirname(fromPath), spec)).replace(/\.js$/, '.ts');
      targets.add(target);
    }
  }
  return [...targets];
}

const SKIP = new Set(['node_modules', 'dist', '.git', 'train']);

/** Every .ts file under `root` (skipping build output, dependencies and the Python training folder). */
export function tsFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name) || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(root, path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(relative(root, path).split(sep).join('/'));
  }
  return out;
}

export function importGraph(root: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const from of tsFiles(root)) {
    for (const to of importsOf(readFileSync(join(root, from), 'utf8'), from)) edges.push({ from, to });
  }
  return edges;
}

export const repoRoot = (metaUrl: string, up: number): string => {
  let dir = dirname(new URL(metaUrl).pathname);
  for (let i = 0; i < up; i++) dir = dirname(dir);
  return dir;
};

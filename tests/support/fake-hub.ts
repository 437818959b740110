// A local HTTP server that speaks the Hugging Face Hub's model endpoints, for the pull tests (reached through
// HF_ENDPOINT, as a mirror would be): GET /api/models/<repo>/revision/<rev> (the model's commit and file
// listing), and GET/HEAD /<repo>/resolve/<rev>/<file> with the Hub's headers (X-Repo-Commit, ETag, and for LFS
// files X-Linked-Etag = sha256 and X-Linked-Size) and byte ranges. It serves folders from disk, treats *.onnx
// as LFS files, and can be told to cut a download short or to serve a corrupted copy once.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface HubRequest {
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface FakeHub {
  url: string;
  requests: HubRequest[];
  /** The next GET of `file` stops after `bytes` bytes: the server closes the connection short of Content-Length. */
  cutNext(file: string, bytes: number): void;
  /** Serve `file` with one byte flipped from now on, under its true etag. */
  corrupt(file: string): void;
  commitOf(repo: string): string;
  close(): Promise<void>;
}

interface RepoFile {
  data: Buffer;
  lfs: boolean;
  sha256: string;
  gitSha1: string;
}

export async function startFakeHub(repos: Record<string, string>): Promise<FakeHub> {
  const contents = new Map<string, Map<string, RepoFile>>();
  for (const [repo, dir] of Object.entries(repos)) contents.set(repo, readRepo(dir));
  const commits = new Map([...contents.keys()].map((repo) => [repo, createHash('sha1').update(`commit ${repo}`).digest('hex')]));
  const requests: HubRequest[] = [];
  const cuts = new Map<string, number>();
  const corrupted = new Set<string>();

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    requests.push({ method: req.method ?? 'GET', path: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const info = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (info) return modelInfo(res, decodeURIComponent(info[1]!));
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) return serveFile(req, res, resolve[1]!, decodeURIComponent(resolve[3]!));
    notFound(res, 'RepoNotFound', 'Repository not found');
  });

  function modelInfo(res: ServerResponse, repo: string): void {
    const files = contents.get(repo);
    if (!files) return notFound(res, 'RepoNotFound', 'Repository not found');
    json(res, 200, {
      _id: `id-${repo}`,
      id: repo,
      sha: commits.get(repo),
      private: false,
      downloads: 0,
      likes: 0,
      lastModified: '2026-01-01T00:00:00.000Z',
      siblings: [...files.keys(), 'README.md', 'unet/diffusion_pytorch_model.safetensors'].map((rfilename) => ({ rfilename })),
    });
  }

  function serveFile(req: IncomingMessage, res: ServerResponse, repo: string, file: string): void {
    const found = contents.get(repo)?.get(file);
    if (!found) return notFound(res, 'EntryNotFound', `${file} does not exist`);
    let data = found.data;
    if (corrupted.has(file)) {
      data = Buffer.from(data);
      data[data.length >> 1]! ^= 0xff;
    }
    const headers: Record<string, string | number> = {
      'X-Repo-Commit': commits.get(repo)!,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      ETag: `"${found.lfs ? found.sha256 : found.gitSha1}"`,
    };
    if (found.lfs) {
      headers['X-Linked-Etag'] = `"${found.sha256}"`;
      headers['X-Linked-Size'] = found.data.length;
    }
    let start = 0;
    let end = data.length - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), end) : end;
      headers['Content-Range'] = `bytes ${start}-${end}/${data.length}`;
    }
    const body = data.subarray(start, end + 1);
    headers['Content-Length'] = body.length;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD') return void res.end();
    const cut = cuts.get(file);
    if (cut !== undefined && body.length > 1) {
      cuts.delete(file);
      res.write(body.subarray(0, cut), () => res.socket?.end());
      return;
    }
    res.end(body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    cutNext: (file, bytes) => void cuts.set(file, bytes),
    corrupt: (file) => void corrupted.add(file),
    commitOf: (repo) => commits.get(repo)!,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function readRepo(dir: string): Map<string, RepoFile> {
  const files = new Map<string, RepoFile>();
  const walk = (rel: string): void => {
    for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const name = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(name);
      else {
        const data = readFileSync(path.join(dir, name));
        files.set(name, {
          data,
          lfs: name.endsWith('.onnx') && statSync(path.join(dir, name)).size > 0,
          sha256: createHash('sha256').update(data).digest('hex'),
          gitSha1: createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex'),
        });
      }
    }
  };
  walk('');
  return files;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function notFound(res: ServerResponse, code: string, message: string): void {
  res.writeHead(404, { 'Content-Type': 'application/json', 'X-Error-Code': code });
  res.end(JSON.stringify({ error: message }));
}

// A hub-shaped HTTP server on 127.0.0.1 for the download tests: the requests @huggingface/hub
// makes (revision, tree, resolve with ranges), a gated repository, and faults on demand.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';

export interface Repo {
  /** The snapshot folder served. */
  dir: string;
  /** Files listed (and served) that are not in `dir`. */
  extra?: Record<string, Buffer>;
  /** Served only with `Authorization: Bearer <token>`. */
  gatedToken?: string;
}

export interface Faults {
  /** The next full download of this file gets one byte flipped. */
  corruptOnce?: string;
  /** The next download of this file from byte 0 stops after this many bytes, the connection cut. */
  cutOnce?: { file: string; after: number };
}

export interface HubServer {
  url: string;
  sha: string;
  /** `METHOD path [range]` of every request, in order. */
  log: string[];
  faults: Faults;
  close(): Promise<void>;
}

const LFS_FROM = 1 << 20;

interface Entry {
  path: string;
  body: () => Buffer;
  size: number;
  oid: string;
  sha256: string;
}

export async function startHub(repos: Record<string, Repo>): Promise<HubServer> {
  const sha = createHash('sha1').update(Object.keys(repos).join()).digest('hex');
  const listings = new Map(Object.entries(repos).map(([id, repo]) => [id, listing(repo)]));
  const log: string[] = [];
  const faults: Faults = {};
  const server = http.createServer((req, res) => {
    log.push(`${req.method} ${decodeURIComponent(req.url ?? '')}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    try {
      route(req, res);
    } catch (e) {
      json(res, 500, { error: String(e) });
    }
  });

  function route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const api = url.pathname.match(/^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)/);
    const resolve = url.pathname.match(/^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/);
    const id = decodeURIComponent((api ?? resolve)?.[1] ?? '');
    const repo = repos[id];
    if (!repo) return json(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
    if (repo.gatedToken && req.headers.authorization !== `Bearer ${repo.gatedToken}`) {
      return json(res, 401, { error: `Access to model ${id} is restricted. You must have access to it and be authenticated to access it.` }, { 'X-Error-Code': 'GatedRepo' });
    }
    const files = listings.get(id)!;
    if (api?.[2] === 'revision') return json(res, 200, { _id: id, id, sha, private: false, siblings: files.map((f) => ({ rfilename: f.path })) });
    if (api?.[2] === 'tree') {
      return json(res, 200, files.map((f) => ({
        type: 'file',
        path: f.path,
        size: f.size,
        oid: f.oid,
        ...(f.size >= LFS_FROM ? { lfs: { oid: f.sha256, size: f.size, pointerSize: 134 } } : {}),
      })));
    }
    const file = resolve && files.find((f) => f.path === decodeURIComponent(resolve[3]));
    if (!file) return json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
    serveFile(req, res, file);
  }

  function serveFile(req: http.IncomingMessage, res: http.ServerResponse, file: Entry): void {
    let body = file.body();
    const range = req.headers.range?.match(/^bytes=(\d+)-(\d*)$/);
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Number(range[2]) : file.size - 1;
    const headers = {
      ETag: `"${file.size >= LFS_FROM ? file.sha256 : file.oid}"`,
      'X-Repo-Commit': sha,
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
    };
    const probe = start === 0 && end === 0;
    if (!probe && faults.corruptOnce === file.path && start === 0) {
      faults.corruptOnce = undefined;
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    const part = body.subarray(start, end + 1);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'Content-Length': part.length,
      ...(range ? { 'Content-Range': `bytes ${start}-${end}/${file.size}` } : {}),
    });
    const cut = faults.cutOnce;
    if (!probe && cut?.file === file.path && start === 0) {
      faults.cutOnce = undefined;
      res.write(part.subarray(0, cut.after), () => setTimeout(() => res.socket?.destroy(), 50));
      return;
    }
    res.end(part);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sha,
    log,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function listing(repo: Repo): Entry[] {
  const entries: Entry[] = [];
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      if (fs.statSync(full).isDirectory()) walk(full);
      else entries.push(entry(path.relative(repo.dir, full).split(path.sep).join('/'), () => fs.readFileSync(full)));
    }
  };
  walk(repo.dir);
  for (const [name, body] of Object.entries(repo.extra ?? {})) entries.push(entry(name, () => body));
  return entries;
}

function entry(file: string, body: () => Buffer): Entry {
  const content = body();
  return {
    path: file,
    body,
    size: content.length,
    oid: createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex'),
    sha256: createHash('sha256').update(content).digest('hex'),
  };
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

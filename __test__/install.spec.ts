// A user's `npm install`: the main package and the linux-x64-gnu package, packed as npm publishes
// them, installed into an empty project from the npm registry with an npm cache of its own (empty,
// as on a new machine), with no Rust and no access to this repository's node_modules, used from
// TypeScript compiled with --strict. No install script runs in the installed tree but those a
// test names, so nothing is fetched from outside the registry.
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compareVersions, GLIBC_BASELINE } from '../js/binding';
import { Embedder, unsupportedPlatform } from '../js/index';
import { requireModel, ROOT, TEXTS } from './helpers';

const OUT = path.join(ROOT, '.cache', 'packages');
/** By `${process.platform}-${process.arch}`: the platform package and the ONNX Runtime library it ships. */
const PLATFORMS: Record<string, { dir: string; lib: string; extra?: string[] }> = {
  'linux-x64': { dir: 'linux-x64-gnu', lib: 'libonnxruntime.so.1' },
  'linux-arm64': { dir: 'linux-arm64-gnu', lib: 'libonnxruntime.so.1' },
  'darwin-arm64': { dir: 'darwin-arm64', lib: 'libonnxruntime.1.30.0.dylib', extra: ['mlx.metallib'] },
  'win32-x64': { dir: 'win32-x64-msvc', lib: 'onnxruntime.dll' },
};
const HERE = PLATFORMS[`${process.platform}-${process.arch}`];
const PLATFORM = `semantic-search-native-${HERE?.dir}`;
// Linux builds its package here (scripts/package.js build); the release workflow's test jobs put
// the build of their runner in npm/<platform>/ and set SEMANTIC_SEARCH_PREBUILT.
const PREBUILT = Boolean(process.env.SEMANTIC_SEARCH_PREBUILT);
const LINUX = process.platform === 'linux';

describe('the platform check before loading', () => {
  it('says to use a glibc image on musl, and names the glibc needed', () => {
    expect(unsupportedPlatform('linux', null)).toMatch(/needs glibc: this Linux runs musl .* Use a glibc-based image/);
    expect(unsupportedPlatform('linux', '2.17')).toMatch(/needs glibc 2\.28 or later; this system has 2\.17/);
    expect(unsupportedPlatform('linux', '2.28')).toBeNull();
    expect(unsupportedPlatform('linux', '2.36')).toBeNull();
    expect(unsupportedPlatform('darwin', null)).toBeNull();
  });
});

const packable = HERE && (LINUX || PREBUILT) ? describe : describe.skip;
const onLinux = LINUX ? it : it.skip;

packable('a fresh install from the packed packages', () => {
  const modelDir = requireModel();
  let project: string;
  let npmCache: string;
  let packed: Array<{ filename: string; size: number; unpackedSize: number; files: string[] }>;

  beforeAll(() => {
    const script = path.join(ROOT, 'scripts', 'package.js');
    const steps = PREBUILT ? [['libs'], ['pack', OUT]] : [['all', OUT]];
    for (const step of steps) execFileSync(process.execPath, [script, ...step], { cwd: ROOT, stdio: 'inherit' });
    packed = JSON.parse(fs.readFileSync(path.join(OUT, 'packed.json'), 'utf8'));
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-fresh-'));
    npmCache = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-npm-cache-'));
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'fresh-install', version: '1.0.0', private: true }));
    npm(['install', '--no-audit', '--no-fund', ...packed.map((p) => path.join(OUT, p.filename))]);
  }, 1_200_000);
  afterAll(() => {
    for (const dir of [project, npmCache]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('installs a tree in which no package has an install script', () => {
    expect(installScripts()).toEqual([]);
  });

  it('packs only what users need, and prints the sizes', () => {
    const [main, platform] = packed;
    expect(main.files.sort()).toEqual([
      'LICENSE',
      'README.md',
      ...['binding', 'calls', 'cancel', 'cli', 'embedder', 'errors', 'gate', 'health', 'hub', 'index', 'logger', 'remote-client', 'remote', 'reranker'].flatMap((n) => [`dist/${n}.d.ts`, `dist/${n}.js`]),
      'index.d.ts',
      'index.js',
      'package.json',
    ]);
    expect(platform.files.sort()).toEqual(
      ['README.md', 'THIRD-PARTY-NOTICES.md', HERE.lib, ...(HERE.extra ?? []), 'package.json', `semantic-search-native.${HERE.dir}.node`].sort(),
    );
    for (const p of packed) console.log(`${p.filename}: ${mb(p.size)} MB packed, ${mb(p.unpackedSize)} MB unpacked`);
    expect(main.size).toBeLessThan(100_000);
  });

  onLinux(`links against glibc ${GLIBC_BASELINE} at most, the addon and the ONNX Runtime it ships`, () => {
    const dir = path.join(project, 'node_modules', PLATFORM);
    for (const file of [`semantic-search-native.${HERE.dir}.node`, HERE.lib]) {
      const symbols = execFileSync('objdump', ['-T', path.join(dir, file)], { encoding: 'utf8', maxBuffer: 1 << 26 });
      const versions = [...new Set(symbols.match(/GLIBC_\d+(\.\d+)*/g) ?? [])].map((v) => v.slice(6)).sort(compareVersions);
      const newest = versions[versions.length - 1];
      console.log(`${file}: newest glibc symbol version ${newest}`);
      expect(compareVersions(newest, GLIBC_BASELINE)).toBeLessThanOrEqual(0);
    }
  });

  it('runs from TypeScript compiled with --strict, with no Rust, giving the repo build\'s vectors and reranker hits', async () => {
    npm(['install', '--no-audit', '--no-fund', `typescript@${devVersion('typescript')}`, `@types/node@${devVersion('@types/node')}`]);
    fs.writeFileSync(
      path.join(project, 'main.ts'),
      `import { Embedder, RerankHit } from 'semantic-search-native';
import * as fs from 'fs';

async function main(): Promise<void> {
  const [modelDir, texts, out, reranker] = process.argv.slice(2);
  const embedder = new Embedder({ modelDir, reranker, backend: 'cpu', weights: 'safetensors', cache: false });
  await embedder.init();
  const documents: string[] = JSON.parse(fs.readFileSync(texts, 'utf8'));
  const vectors: number[][] = await embedder.embed(documents);
  const hits: RerankHit[] = await embedder.rerank('read a file line by line', documents, { topK: 3 });
  fs.writeFileSync(out, JSON.stringify({ vectors, hits, info: embedder.info() }));
  await embedder.close();
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
`,
    );
    run(process.execPath, [path.join(project, 'node_modules', 'typescript', 'bin', 'tsc'), '--strict', '--target', 'es2020', '--module', 'commonjs', 'main.ts']);
    fs.writeFileSync(path.join(project, 'texts.json'), JSON.stringify(TEXTS));
    const reranker = path.join(project, 'reranker');
    fs.cpSync(path.join(ROOT, 'tests', 'fixtures', 'rerank-bert'), reranker, { recursive: true });
    fs.copyFileSync(path.join(modelDir, 'tokenizer.json'), path.join(reranker, 'tokenizer.json'));
    run(process.execPath, ['main.js', modelDir, 'texts.json', 'out.json', reranker]);
    const installed = JSON.parse(fs.readFileSync(path.join(project, 'out.json'), 'utf8'));

    expect(installed.info.ortLibrary).toBe(path.join(fs.realpathSync(project), 'node_modules', PLATFORM, HERE.lib));
    const repo = new Embedder({ modelDir, reranker, backend: 'cpu', weights: 'safetensors', cache: false });
    await repo.init();
    expect(installed.vectors).toEqual(await repo.embed(TEXTS));
    expect(installed.hits).toHaveLength(3);
    expect(installed.hits).toEqual(await repo.rerank('read a file line by line', TEXTS, { topK: 3 }));
    await repo.close();
  });

  it('puts the download command on npx', () => {
    const shell = process.platform === 'win32';
    const help = spawnSync('npx', ['--no-install', 'semantic-search-native', 'download', '--help'], { cwd: project, env: userEnv(), encoding: 'utf8', shell });
    expect(help.stderr).toMatch(/usage: semantic-search-native download \[model id\]/);
    expect(help.status).toBe(0);
  });

  // the process's memory map shows the libraries loaded: Linux only
  onLinux('keeps one ONNX Runtime in a process that also runs onnxruntime-node, whichever loads first', () => {
    // the user's own dependency; its postinstall would fetch CUDA libraries from outside npm
    npm(['install', '--no-audit', '--no-fund', `onnxruntime-node@${devVersion('onnxruntime-node')}`], { ONNXRUNTIME_NODE_INSTALL: 'skip' });
    // its postinstall is the only install script, and the variable tells it to fetch nothing
    expect(installScripts()).toEqual(['onnxruntime-node: postinstall']);
    const bundled = path.join(fs.realpathSync(project), 'node_modules', PLATFORM, HERE.lib);
    const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
    const theirs = path.join(fs.realpathSync(project), 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', arch, HERE.lib);
    const onnx = path.join(modelDir, 'onnx', 'model.onnx');
    const script = (oursFirst: boolean) => `
const { Embedder } = require('semantic-search-native');
const ort = () => require('onnxruntime-node').InferenceSession.create(${JSON.stringify(onnx)});
async function main() {
  const embedder = new Embedder({ modelDir: ${JSON.stringify(modelDir)}, backend: 'cpu', cache: false${oursFirst ? `, ortLibrary: ${JSON.stringify(bundled)}` : ''} });
  ${oursFirst ? 'await embedder.init(); await ort();' : 'await ort(); await embedder.init();'}
  await embedder.embed(['one runtime']);
  const maps = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n');
  const libs = [...new Set(maps.map((l) => l.split(/\\s+/)[5]).filter((p) => p && /libonnxruntime\\.so/.test(p)))];
  console.log(JSON.stringify({ libs, ortLibrary: embedder.info().ortLibrary }));
}
main().catch((e) => { console.error(e.message); process.exit(1); });`;
    const oursFirst = JSON.parse(run(process.execPath, ['-e', script(true)]));
    expect(oursFirst).toEqual({ libs: [bundled], ortLibrary: bundled });
    const theirsFirst = JSON.parse(run(process.execPath, ['-e', script(false)]));
    expect(theirsFirst).toEqual({ libs: [theirs], ortLibrary: theirs });
  });

  /** `name: script` for every package of the installed tree with an install script. */
  function installScripts(): string[] {
    const found: string[] = [];
    const visit = (modules: string) => {
      if (!fs.existsSync(modules)) return;
      for (const entry of fs.readdirSync(modules)) {
        if (entry.startsWith('.')) continue;
        const dir = path.join(modules, entry);
        if (entry.startsWith('@')) {
          visit(dir);
          continue;
        }
        const manifest = path.join(dir, 'package.json');
        if (!fs.existsSync(manifest)) continue;
        const { name, scripts = {} } = JSON.parse(fs.readFileSync(manifest, 'utf8'));
        for (const hook of ['preinstall', 'install', 'postinstall']) if (scripts[hook]) found.push(`${name}: ${hook}`);
        visit(path.join(dir, 'node_modules'));
      }
    };
    visit(path.join(project, 'node_modules'));
    return found.sort();
  }

  /**
   * The environment of a user's shell on a new machine: no Rust on the PATH, nothing npm set for
   * this repository, and an empty npm cache of its own (packages come from the registry).
   */
  function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!/^(npm_|NODE_PATH$|INIT_CWD$|ORT_DYLIB_PATH$|CARGO|RUST)/i.test(key)) env[key] = value;
    }
    env.npm_config_cache = npmCache;
    env.PATH = (process.env.PATH ?? '')
      .split(path.delimiter)
      .filter((dir) => !fs.existsSync(path.join(dir, 'cargo')) && !fs.existsSync(path.join(dir, 'rustc')))
      .join(path.delimiter);
    return { ...env, ...extra };
  }

  function run(command: string, args: string[], extra: NodeJS.ProcessEnv = {}): string {
    const shell = process.platform === 'win32'; // npm is npm.cmd there
    return execFileSync(command, args, { cwd: project, env: userEnv(extra), encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], shell });
  }

  function npm(args: string[], extra: NodeJS.ProcessEnv = {}): void {
    run('npm', args, extra);
  }
});

function devVersion(name: string): string {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(bytes < 1e6 ? 3 : 1);
}

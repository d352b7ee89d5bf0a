#!/usr/bin/env node
// `npx semantic-search-native download <model id> [--revision R] [--dir DIR] [--onnx [FILE]]`;
// `--help`, `-h` or no arguments print the usage (exit 0), an unknown command the usage (exit 2).
import { DEFAULT_MODEL, download, Progress } from './hub';

const USAGE = `usage: semantic-search-native download [model id] [--revision REV] [--dir DIR] [--onnx [FILE]]

Downloads the files semantic-search-native reads (config, tokenizer, pooling, prompts and
model.safetensors or its shards; ONNX weights with --onnx) into the Hugging Face cache
($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub), or into DIR with --dir.
The model id defaults to ${DEFAULT_MODEL}. An interrupted download resumes when run again.
Environment: HF_ENDPOINT (a mirror), HF_TOKEN (gated or private models), HF_HUB_OFFLINE=1 (cache only).`;

interface Args {
  repo: string;
  revision?: string;
  dir?: string;
  onnx?: boolean | string;
}

function parse(argv: string[]): Args {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') throw new UsageError('');
  if (command !== 'download') throw new UsageError(`unknown command '${command}'`);
  const args: Args = { repo: DEFAULT_MODEL };
  let repoGiven = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const value = () => {
      const v = rest[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '--revision') args.revision = value();
    else if (arg === '--dir') args.dir = value();
    else if (arg === '--onnx') args.onnx = rest[i + 1]?.endsWith('.onnx') ? rest[++i] : true;
    else if (arg === '--help' || arg === '-h') throw new UsageError('');
    else if (arg.startsWith('--') || repoGiven) throw new UsageError(`unexpected argument '${arg}'`);
    else [args.repo, repoGiven] = [arg, true];
  }
  return args;
}

class UsageError extends Error {}

/** A one-line bar on a terminal; a line per finished file otherwise (logs, CI). */
function progressPrinter(): (p: Progress) => void {
  const tty = process.stderr.isTTY;
  let last = 0;
  const started = new Map<string, number>();
  return (p) => {
    if (!started.has(p.file)) started.set(p.file, Date.now());
    const seconds = (Date.now() - started.get(p.file)!) / 1000;
    if (p.phase === 'ready') {
      if (tty) process.stderr.write('\r\x1b[K');
      process.stderr.write(`${p.file}  ${megabytes(p.total)} MB  ok\n`);
      return;
    }
    if (!tty || Date.now() - last < 100) return;
    last = Date.now();
    const fraction = p.total > 0 ? p.done / p.total : 1;
    const bar = '#'.repeat(Math.round(fraction * 30)).padEnd(30, '.');
    const rate = p.phase === 'fetch' && seconds > 0 ? `  ${(p.done / 1e6 / seconds).toFixed(1)} MB/s` : '';
    const what = p.phase === 'check' ? 'checking' : '';
    process.stderr.write(`\r\x1b[K${p.file} [${bar}] ${(fraction * 100).toFixed(0)}% ${megabytes(p.done)}/${megabytes(p.total)} MB${rate} ${what}`);
  };
}

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const folder = await download(args.repo, { revision: args.revision, dir: args.dir, onnx: args.onnx, onProgress: progressPrinter() });
  console.log(folder);
  const use = args.dir ? `{ modelDir: '${folder}' }` : `{ model: '${args.repo}' }`;
  process.stderr.write(`ready: new Embedder(${use})\n`);
}

main().catch((e: Error) => {
  if (e instanceof UsageError) {
    if (e.message) console.error(`semantic-search-native: ${e.message}\n`);
    console.error(USAGE);
    process.exit(e.message ? 2 : 0);
  }
  console.error(`semantic-search-native: ${e.message}`);
  process.exit(1);
});

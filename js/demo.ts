// The main job in small: index the symbols of a source tree, then search it.
// Usage: npm run demo -- [--models dirA,dirB] [--reranker DIR] [dir] "query"
// With --models, the vectors of several models are concatenated (Qodo-Embed-1 || Jina v3: 2560 dims);
// with --reranker, the top 50 vector hits are ordered by that reranker (a folder or hub id).
import * as fs from 'fs';
import * as path from 'path';
import { Embedder } from './embedder';
import { CodeSymbol, extractSymbols, listSourceFiles } from './symbols';
import { CodedError } from './errors';

const DEMO_MODEL = path.join(__dirname, '..', '.cache', 'models', 'all-MiniLM-L6-v2');

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = args.indexOf('--models');
  const modelDirs = flag >= 0 ? args.splice(flag, 2)[1]?.split(',').filter(Boolean) : undefined;
  if (flag >= 0 && !modelDirs?.length) throw new CodedError('ERR_INPUT', '--models needs a comma-separated list of model folders');
  const rerankFlag = args.indexOf('--reranker');
  const reranker = rerankFlag >= 0 ? args.splice(rerankFlag, 2)[1] : undefined;
  if (rerankFlag >= 0 && !reranker) throw new CodedError('ERR_INPUT', '--reranker needs a reranker folder or hub id');
  const query = args.pop() ?? 'split texts into batches by token budget';
  const root = path.resolve(args[0] ?? path.join(__dirname, '..'));
  const modelDir = process.env.SEMANTIC_SEARCH_MODEL_DIR || DEMO_MODEL;

  const symbols: CodeSymbol[] = listSourceFiles(root).flatMap((file) =>
    extractSymbols(path.relative(root, file), fs.readFileSync(file, 'utf8')),
  );
  if (symbols.length === 0) throw new CodedError('ERR_INPUT', `no functions or classes found under ${root}`);

  const models = modelDirs ? { models: modelDirs.map((dir) => ({ modelDir: dir })) } : { modelDir };
  const embedder = new Embedder({ ...models, reranker });
  await embedder.init();
  const info = embedder.info();
  const parts = info.parts.map((p) => `${path.basename(p.modelDir)} (${p.info.arch}, ${p.info.dim}-dim)`).join(' || ');
  console.log(`model ${parts}${info.parts.length > 1 ? ` = ${info.dim} dims` : ''} on ${info.device}${info.ortVersion ? `, ONNX Runtime ${info.ortVersion}` : ''}`);

  const started = Date.now();
  const vectors = await embedder.embedFloat32(symbols.map((s) => s.text), false, { onProgress: progressBar });
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write('\n');
  console.log(`indexed ${symbols.length} symbols from ${root} in ${seconds.toFixed(1)} s (${(symbols.length / seconds).toFixed(0)}/s)`);

  const [q] = await embedder.embedFloat32([query], true);
  let ranked = vectors
    .map((v, i) => ({ i, score: dot(q, v) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, reranker ? 50 : 5);
  if (reranker) {
    const rerankStarted = Date.now();
    const hits = await embedder.rerank(query, ranked.map(({ i }) => symbols[i].text), { topK: 5 });
    ranked = hits.map((h) => ({ i: ranked[h.index].i, score: h.score }));
    console.log(`\nreranked the top 50 with ${path.basename(reranker)} in ${Date.now() - rerankStarted} ms`);
  }
  console.log(`\ntop 5 for "${query}"${reranker ? ' (reranker scores)' : ''}:`);
  for (const { i, score } of ranked) {
    const s = symbols[i];
    console.log(`  ${score.toFixed(3)}  ${s.file}:${s.line}  ${s.name}`);
  }
}

function progressBar(done: number, total: number): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  process.stdout.write(`\rembedding [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

main().catch((e: Error) => {
  console.error(`demo failed: ${e.message}`);
  process.exit(1);
});

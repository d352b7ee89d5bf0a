// One start of a search CLI, in this fresh process: load the library and the model, embed one
// query, print the figures as one JSON line, exit. argv[2]: a JSON job
// { runner: 'addon' | 'transformers.js', modelDir | modelRoot + modelName, options }.
const job = JSON.parse(process.argv[2]);
const QUERY = 'how are texts split into batches by a token budget';
const mb = () => Math.round(process.memoryUsage().rss / 1e6);
const peakMb = () => Math.round((process.resourceUsage().maxRSS / 1024) * 1.048576);

async function addon() {
  const started = performance.now();
  const native = require('..');
  const required = performance.now() - started;
  // the phases of the start, from the model's own log events (seconds)
  const events = {};
  const logger = (_level, event, fields) => (events[event] = fields);
  const model = await native.Model.load(job.modelDir, { ...job.options, logger });
  const loaded = { rss_mb: mb(), peak_mb: peakMb(), cache: model.info().cache };
  await model.embed([QUERY], true);
  await new Promise((resolve) => setImmediate(resolve)); // the last events reach the logger
  const ms = (s) => (s === undefined ? undefined : Math.round(s * 1000));
  loaded.phases = {
    boot: Math.round(started),
    require: Math.round(required),
    library: ms(events.ort_library?.seconds),
    check: ms(events.graph_cache_hit?.check_seconds),
    session: ms(events.graph_cache_hit?.session_seconds),
    tokenizer: ms(events.tokenizer_loaded?.seconds),
    init: ms(events.init?.seconds),
    firstForward: ms(events.call?.seconds),
  };
  return loaded;
}

async function transformersJs() {
  const { pipeline, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = job.modelRoot;
  const extract = await pipeline('feature-extraction', job.modelName, {
    dtype: 'fp32',
    local_files_only: true,
    session_options: { intraOpNumThreads: job.threads, interOpNumThreads: 1 },
  });
  const loaded = { rss_mb: mb(), peak_mb: peakMb() };
  await extract([QUERY], { pooling: 'mean', normalize: true });
  return loaded;
}

(job.runner === 'addon' ? addon() : transformersJs())
  .then((loaded) => console.log(JSON.stringify({ ...loaded, first_vector_ms: performance.now(), end_peak_mb: peakMb() })))
  .catch((e) => console.log(JSON.stringify({ error: e.message })));

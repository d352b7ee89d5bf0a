// The cost of the remote backend over the local one, on the MiniLM test model: the same texts
// through `new Embedder({ modelDir })` and through `new Embedder({ remote })` against a TEI-shaped
// server on 127.0.0.1 that embeds with this same addon, model and threads in its own process
// (remote_server.js), so that what differs is the remote path: HTTP, JSON both ways, a second
// process. Infinity (PyTorch) serving the same folder runs too when its venv is there
// (`.cache/infinity`, which the remote tests install). Measured: one query's latency (p50 of 200),
// the corpus in requests of 32 texts one at a time (requests/s, texts/s), and 4 in flight.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');

async function remoteBench({ texts, queries, modelDir, threads, log }) {
  const { Embedder } = require('..');
  const rows = {};
  const local = new Embedder({ modelDir, backend: 'cpu', threads, cache: false });
  await local.init();
  log('remote bench: the addon in this process ...');
  rows.local = await measure(local, texts, queries);
  await local.close();
  const server = await start(process.execPath, [path.join(__dirname, 'remote_server.js'), modelDir, String(threads)], (line) => /^\d+$/.test(line) && Number(line));
  try {
    log('remote bench: the same addon behind HTTP on 127.0.0.1 (TEI API) ...');
    rows.remote = await measureRemote({ url: `http://127.0.0.1:${server.port}`, api: 'tei' }, texts, queries);
  } finally {
    server.child.kill();
  }
  const infinity = path.join(ROOT, '.cache', 'infinity', 'bin', 'infinity_emb');
  if (fs.existsSync(infinity)) {
    log('remote bench: Infinity (PyTorch CPU) on 127.0.0.1 ...');
    const port = 7997 + Math.floor(Math.random() * 1000);
    const args = ['v2', '--model-id', modelDir, '--engine', 'torch', '--device', 'cpu', '--host', '127.0.0.1', '--port', String(port), '--no-model-warmup'];
    const env = { ...process.env, HF_HUB_OFFLINE: '1', INFINITY_ANONYMOUS_USAGE_STATS: '0', OMP_NUM_THREADS: String(threads) };
    const inf = await start(infinity, args, (line) => /Uvicorn running/.test(line) && port, env);
    try {
      rows.infinity = await measureRemote({ url: `http://127.0.0.1:${port}`, api: 'infinity' }, texts, queries);
    } finally {
      inf.child.kill();
    }
  } else {
    rows.infinity = { error: 'not installed (.cache/infinity: npm test installs it)' };
  }
  return rows;
}

async function measureRemote(remote, texts, queries) {
  const { Embedder } = require('..');
  const e = new Embedder({ remote: { ...remote, maxBatchTexts: 32, maxConcurrent: 1 } });
  await e.init();
  const row = await measure(e, texts, queries);
  const four = new Embedder({ remote: { ...remote, maxBatchTexts: 32, maxConcurrent: 4 } });
  await four.init();
  const started = performance.now();
  await four.embedFloat32(texts);
  row.textsPerSecond4 = texts.length / ((performance.now() - started) / 1000);
  return row;
}

async function measure(embedder, texts, queries) {
  for (const q of queries.slice(0, 10)) await embedder.embedFloat32([q], true); // warm
  const times = [];
  for (const q of queries) {
    const t = performance.now();
    await embedder.embedFloat32([q], true);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const started = performance.now();
  let requests = 0;
  for (let i = 0; i < texts.length; i += 32, requests++) await embedder.embedFloat32(texts.slice(i, i + 32));
  const seconds = (performance.now() - started) / 1000;
  return { queryP50Ms: times[times.length >> 1], requestsPerSecond: requests / seconds, textsPerSecond: texts.length / seconds };
}

/** Starts a server and waits for the line that says it listens (`ready` gives its port). */
function start(command, args, ready, env = process.env) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => fail(new Error(`${path.basename(command)} did not start in 120 s:\n${output.slice(-2000)}`)), 120000);
    const fail = (e) => {
      clearTimeout(timer);
      child.kill();
      reject(e);
    };
    const read = (chunk) => {
      output += chunk;
      for (const line of output.split('\n')) {
        const port = ready(line.trim());
        if (port) {
          clearTimeout(timer);
          resolve({ child, port });
        }
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('exit', (code) => fail(new Error(`${path.basename(command)} exited with ${code}:\n${output.slice(-2000)}`)));
  });
}

function printRemote(rows, flags, threads) {
  console.log(`\nThe remote backend (MiniLM, ${threads} threads each side, 127.0.0.1): one query's latency, the corpus in requests of 32 texts`);
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`${pad('runner', 44)}${pad('query p50 ms', 14)}${pad('requests/s', 12)}${pad('texts/s', 10)}texts/s, 4 in flight`);
  const names = [['local', 'addon in this process'], ['remote', 'remote: the same addon behind HTTP (tei)'], ['infinity', 'remote: Infinity, PyTorch CPU (infinity)']];
  for (const [key, name] of names) {
    const r = rows[key];
    if (!r || r.error) {
      console.log(`${pad(name, 44)}${r ? r.error : 'not run'}`);
      continue;
    }
    console.log(`${pad(name, 44)}${pad(r.queryP50Ms.toFixed(2), 14)}${pad(r.requestsPerSecond.toFixed(1), 12)}${pad(r.textsPerSecond.toFixed(0), 10)}${r.textsPerSecond4 ? r.textsPerSecond4.toFixed(0) : '-'}`);
  }
  const { local, remote } = rows;
  if (local && remote && !remote.error) {
    console.log(`the remote path adds ${(remote.queryP50Ms - local.queryP50Ms).toFixed(2)} ms to a query and costs ${((1 - remote.textsPerSecond / local.textsPerSecond) * 100).toFixed(0)} % of the throughput (cpu flags: ${flags.join(' ')})`);
  }
}

module.exports = { remoteBench, printRemote };

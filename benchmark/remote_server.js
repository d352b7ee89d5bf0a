// A TEI-shaped embedding server (GET /info, POST /embed) that embeds with this addon, for the
// remote bench: with the same model and threads as the local runner, the difference between the
// two is the remote path itself. Usage: node remote_server.js MODEL_DIR THREADS; prints the port.
const http = require('http');
const { Model } = require('..');

async function main() {
  const [modelDir, threads] = process.argv.slice(2);
  const model = await Model.load(modelDir, { backend: 'cpu', threads: Number(threads), cache: false });
  const server = http.createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/info') {
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ model_id: 'all-MiniLM-L6-v2', max_client_batch_size: 32 }));
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const { inputs } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const vectors = await model.embed(inputs);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(vectors.map((v) => Array.from(v))));
  });
  server.listen(0, '127.0.0.1', () => console.log(server.address().port));
}

main();

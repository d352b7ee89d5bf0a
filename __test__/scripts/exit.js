// A process that embeds and exits: `normal` (the event loop drains), `exit` (process.exit() with
// calls in flight) or `signal` (waits for SIGTERM with calls in flight).
const [addon, modelDir, how] = process.argv.slice(2);
const native = require(addon);

(async () => {
  await native.init(modelDir, { backend: 'cpu' });
  const texts = Array.from({ length: 200 }, (_, i) => `text ${i} `.repeat(20));
  if (how === 'normal') {
    await native.embed(texts);
    return;
  }
  for (let i = 0; i < 8; i++) native.embed(texts).catch(() => {});
  if (how === 'exit') setImmediate(() => process.exit(0));
  else console.log('ready');
})();

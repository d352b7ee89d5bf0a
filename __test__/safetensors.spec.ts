// A snapshot with only config.json, tokenizer.json, 1_Pooling/ and model.safetensors runs:
// the ONNX Runtime graph is built from the weights at init.
import * as fs from 'fs';
import * as path from 'path';
import { modelCopy, requireModel, runNode } from './helpers';

describe('model.safetensors alone', () => {
  const modelDir = requireModel();

  test('a directory without any ONNX file embeds on the CPU', () => {
    const dir = modelCopy(modelDir);
    fs.rmSync(path.join(dir, 'onnx'), { recursive: true });
    for (const f of fs.readdirSync(dir)) {
      if (!['config.json', 'tokenizer.json', '1_Pooling', 'model.safetensors'].includes(f)) fs.rmSync(path.join(dir, f), { recursive: true });
    }
    try {
      const run = runNode(`
        const n = require('.');
        n.init(${JSON.stringify(dir)}).then(async (info) => {
          const [v] = await n.embed(['fn main() {}']);
          console.log(JSON.stringify({ backend: info.backend, weights: info.weights, maxLength: info.maxLength, dim: v.length }));
        }, (e) => console.log('failed', e.message));
      `);
      const out = JSON.parse(run.stdout.trim());
      expect(out).toEqual({ backend: 'cpu', weights: path.join(dir, 'model.safetensors'), maxLength: 512, dim: 384 });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('resident memory after init is at most 1.3 x the safetensors file + 150 MB', () => {
    const size = fs.statSync(path.join(modelDir, 'model.safetensors')).size;
    const run = runNode(`
      const n = require('.');
      n.init(${JSON.stringify(modelDir)}, { weights: 'safetensors' }).then(() => {
        global.gc && global.gc();
        console.log(process.memoryUsage().rss);
      });
    `);
    const rss = Number(run.stdout.trim());
    const limit = 1.3 * size + 150e6;
    console.log(`resident after init: ${(rss / 1e6).toFixed(0)} MB; limit ${(limit / 1e6).toFixed(0)} MB (safetensors ${(size / 1e6).toFixed(0)} MB)`);
    expect(rss).toBeGreaterThan(size); // the weights really are resident
    expect(rss).toBeLessThanOrEqual(limit);
  });
});

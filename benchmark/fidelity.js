// How close one run's vectors are to another's, shared by the benchmarks.
const fs = require('fs');

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Cosines between the rows of two raw float32 files of `dim`-wide unit vectors. */
function fidelity(fileA, fileB, dim) {
  if (!fs.existsSync(fileA) || !fs.existsSync(fileB)) return { min: null, p1: null, p50: null };
  const read = (f) => { const b = fs.readFileSync(f); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
  const [a, b] = [read(fileA), read(fileB)];
  const cosines = [];
  for (let r = 0; r < a.length / dim; r++) {
    let dot = 0;
    for (let k = r * dim; k < (r + 1) * dim; k++) dot += a[k] * b[k];
    cosines.push(dot);
  }
  return { min: +percentile(cosines, 0).toFixed(5), p1: +percentile(cosines, 1).toFixed(5), p50: +percentile(cosines, 50).toFixed(5) };
}

module.exports = { fidelity, percentile };

// A deterministic code corpus: the declarations of TypeScript's own lib .d.ts files (installed
// with this project) with their doc comments, and short natural-language queries for it.
const fs = require('fs');
const path = require('path');

const DECLARATION = /^\s*(?:export\s+)?(?:declare\s+)?(?:interface|function|class|type|enum|var|const|namespace)\s+\w|^\s+(?:readonly\s+)?\w+\??\s*[(<:]/;
const MAX_LINES = 16;

function symbolsOf(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const symbols = [];
  let doc = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*\/\*\*/.test(line)) {
      const start = i;
      while (i < lines.length && !lines[i].includes('*/')) i++;
      doc = lines.slice(start, i + 1).join('\n');
      continue;
    }
    if (doc && DECLARATION.test(line) && words(doc) >= 4) {
      let end = i + 1;
      if (/\{\s*$/.test(line)) while (end < lines.length && end - i < MAX_LINES && !/^\s*\}/.test(lines[end])) end++;
      symbols.push({ file: path.basename(file), line: i + 1, doc, text: `${doc.trim()}\n${lines.slice(i, end).join('\n').trim()}` });
    }
    if (line.trim()) doc = null;
  }
  return symbols;
}

/** Words of a doc comment's prose (links and tags left out). */
function words(doc) {
  return doc.replace(/\[[^\]]*\]\([^)]*\)/g, ' ').replace(/@\w+/g, ' ').split(/[^A-Za-z]+/).filter((w) => w.length > 1).length;
}

/** About `count` symbols, in a fixed order, each text unique. */
function buildCorpus(root, count = 3000) {
  const dir = path.join(root, 'node_modules', 'typescript', 'lib');
  const files = fs.readdirSync(dir).filter((f) => /^lib\..*\.d\.ts$/.test(f)).sort();
  const seen = new Set();
  const symbols = [];
  for (const f of files) {
    for (const s of symbolsOf(path.join(dir, f))) {
      if (symbols.length < count && !seen.has(s.text)) {
        seen.add(s.text);
        symbols.push(s);
      }
    }
  }
  return symbols;
}

/** `count` queries: the first sentence of evenly spaced doc comments, as a person would ask. */
function buildQueries(symbols, count = 200) {
  const queries = [];
  const step = Math.max(1, Math.floor(symbols.length / (count + 20)));
  for (let i = 0; i < symbols.length && queries.length < count; i += step) {
    const sentence = symbols[i].doc
      .replace(/\/\*\*|\*\/|^\s*\*/gm, ' ')
      .replace(/@\w+.*$/s, '')
      .replace(/\{@link\s+([^}]+)\}/g, '$1')
      .replace(/\s+/g, ' ')
      .trim()
      .split(/(?<=\.)\s/)[0];
    if (sentence.length > 8) queries.push(sentence.split(' ').slice(0, 14).join(' ').replace(/\.$/, ''));
  }
  return queries;
}

module.exports = { buildCorpus, buildQueries };

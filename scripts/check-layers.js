#!/usr/bin/env node
// The house rules that a compiler does not check, run by `npm test` and the lint job:
//  1. no file of native/ imports another that imports it back (directly or around a loop):
//     files import downward only;
//  2. no source file of native/ or js/ is over 500 lines (generated index.js/index.d.ts aside).
// `--layers` also prints each file's floor (1 = imports nothing of ours) and what it imports.
// A file's imports are the `crate::`, `super::`, `self::` paths and the paths through the
// modules it declares (`mod x;` then `x::...`), in `use` lines and in code alike, each resolved
// to the file of the longest module prefix.
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const NATIVE = path.join(ROOT, 'native');
const MAX_LINES = 500;

function walk(dir, keep) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p, keep) : keep(p) ? [p] : [];
  });
}

/** `native/a/b.rs` -> `a::b`; `native/a/mod.rs` -> `a`; `native/lib.rs` -> `` (the crate). */
function modulePath(file) {
  const rel = path.relative(NATIVE, file).replace(/\\/g, '/').replace(/\.rs$/, '');
  if (rel === 'lib') return '';
  return rel.replace(/\/mod$/, '').split('/').join('::');
}

/** The code without comments, string and char literals (their text cannot import). */
function code(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/r(#*)"[\s\S]*?"\1/g, '""')
    .replace(/"(?:\\.|[^"\\])*"/g, '""')
    .replace(/'(?:\\.|[^'\\])'/g, "' '")
    .replace(/\/\/[^\n]*/g, ' ');
}

/** `a::{b, c::{d, self}}` -> [`a::b`, `a::c::d`, `a::c`]. */
function expand(tree) {
  tree = tree.replace(/\s+/g, '').replace(/\bas[A-Za-z_]\w*/g, '');
  const brace = tree.indexOf('{');
  if (brace < 0) return [tree.replace(/::self$/, '').replace(/::\*$/, '')];
  const head = tree.slice(0, brace);
  const inner = tree.slice(brace + 1, tree.lastIndexOf('}'));
  const parts = [];
  let depth = 0, start = 0;
  for (let i = 0; i <= inner.length; i++) {
    const c = inner[i];
    if (c === '{') depth++;
    else if (c === '}') depth--;
    else if ((c === ',' || i === inner.length) && depth === 0) {
      if (i > start) parts.push(inner.slice(start, i));
      start = i + 1;
    }
  }
  return parts.flatMap((p) => expand(head + p));
}

/** In an inline module (`mod tests { ... }`), `super::` is the file itself. */
function inlineModules(src) {
  let out = '', at = 0;
  for (const m of src.matchAll(/\bmod\s+\w+\s*\{/g)) {
    if (m.index < at) continue;
    let depth = 0, end = m.index + m[0].length - 1;
    for (; end < src.length; end++) {
      if (src[end] === '{') depth++;
      else if (src[end] === '}' && --depth === 0) break;
    }
    out += src.slice(at, m.index) + src.slice(m.index, end + 1).replace(/\bsuper::/g, 'self::');
    at = end + 1;
  }
  return out + src.slice(at);
}

function imports(file, modules) {
  const self = modulePath(file);
  const src = inlineModules(code(fs.readFileSync(file, 'utf8')));
  const isModRoot = /(^|[/\\])(mod|lib)\.rs$/.test(file);
  // the module whose children `super::` names: the parent of a plain file, the grandparent of mod.rs
  const here = isModRoot ? self : self.split('::').slice(0, -1).join('::');
  const children = [...src.matchAll(/\b(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_]\w*)\s*;/g)].map((m) => m[1]);
  const paths = [];
  for (const m of src.matchAll(/\buse\s+([^;]+);/g)) paths.push(...expand(m[1]));
  for (const m of src.matchAll(/(?<![\w:])((?:crate|super|self)(?:::[A-Za-z_]\w*)+)/g)) paths.push(m[1]);
  for (const child of children) {
    const re = new RegExp(`(?<![\\w:])${child}::([A-Za-z_]\\w*(?:::[A-Za-z_]\\w*)*)`, 'g');
    for (const m of src.matchAll(re)) paths.push(`self::${child}::${m[1]}`);
  }
  const found = new Set();
  for (const p of paths) {
    let segs = p.split('::').filter(Boolean);
    let base;
    if (segs[0] === 'crate') { base = []; segs = segs.slice(1); }
    else if (segs[0] === 'self') { base = self ? self.split('::') : []; segs = segs.slice(1); }
    else if (segs[0] === 'super') {
      base = here ? here.split('::') : [];
      segs = segs.slice(1);
      while (segs[0] === 'super') { base = base.slice(0, -1); segs = segs.slice(1); }
    } else if (children.includes(segs[0])) base = self ? self.split('::') : [];
    else continue; // an external crate or std
    const full = [...base, ...segs];
    for (let n = full.length; n >= 1; n--) {
      const candidate = full.slice(0, n).join('::');
      if (modules.has(candidate)) {
        if (candidate !== self) found.add(candidate);
        break;
      }
    }
  }
  return found;
}

/** Strongly connected groups of more than one file (Tarjan). */
function loops(graph) {
  let index = 0;
  const stack = [], on = new Set(), idx = new Map(), low = new Map(), groups = [];
  const visit = (v) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); on.add(v);
    for (const w of graph.get(v)) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const group = [];
      let w;
      do { w = stack.pop(); on.delete(w); group.push(w); } while (w !== v);
      if (group.length > 1) groups.push(group);
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return groups;
}

function floors(graph) {
  const floor = new Map();
  const of = (v) => {
    if (!floor.has(v)) {
      floor.set(v, 1);
      floor.set(v, 1 + Math.max(0, ...[...graph.get(v)].map(of)));
    }
    return floor.get(v);
  };
  for (const v of graph.keys()) of(v);
  return floor;
}

function main() {
  const files = walk(NATIVE, (p) => p.endsWith('.rs'));
  const byModule = new Map(files.map((f) => [modulePath(f), f]));
  const modules = new Set([...byModule.keys()].filter(Boolean));
  const graph = new Map();
  for (const [mod, file] of byModule) if (mod) graph.set(mod, imports(file, modules));
  let failed = false;
  for (const group of loops(graph)) {
    failed = true;
    const members = new Set(group);
    const edges = group.flatMap((v) => [...graph.get(v)].filter((w) => members.has(w)).map((w) => `${v} -> ${w}`));
    console.log(`import loop among ${group.join(', ')}:\n  ${edges.join('\n  ')}`);
  }
  const sources = [...files, ...walk(path.join(ROOT, 'js'), (p) => /\.ts$/.test(p) && !p.endsWith('.d.ts'))];
  for (const file of sources) {
    const lines = fs.readFileSync(file, 'utf8').split('\n').length;
    if (lines > MAX_LINES) {
      failed = true;
      console.log(`${path.relative(ROOT, file)} has ${lines} lines, over ${MAX_LINES}: split its concerns into files of their own`);
    }
  }
  if (process.argv.includes('--layers') && !failed) {
    const floor = floors(graph);
    const rows = [...graph.keys()].sort((a, b) => floor.get(b) - floor.get(a) || a.localeCompare(b));
    for (const v of rows) console.log(`${String(floor.get(v)).padStart(2)}  ${v}  ->  ${[...graph.get(v)].sort().join(', ') || '-'}`);
  }
  console.log(failed ? 'check-layers: failed' : `check-layers: ${graph.size} files of native/ import downward only; no source file over ${MAX_LINES} lines`);
  process.exit(failed ? 1 : 0);
}

main();

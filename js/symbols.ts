// Extracts the functions, methods, classes and interfaces of source files, with their doc
// comments, as the units a code-search index embeds.
import * as fs from 'fs';
import * as path from 'path';

export interface CodeSymbol {
  file: string;
  line: number;
  name: string;
  text: string;
}

const SOURCE = /\.(ts|tsx|js|mjs|cjs|rs|py|go|java)$/;
const SKIP_DIRS = new Set(['node_modules', 'target', '.git', 'dist', '.cache', '__pycache__']);
const DECLARATION = [
  /^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\*?\s+([A-Za-z_$][\w$]*)/,
  /^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?(?:class|interface)\s+([A-Za-z_$][\w$]*)/,
  /^\s*(?:export\s+)?(?:const|let)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:async\s+)?(?:\([^)]*\)|[A-Za-z_$][\w$]*)\s*=>/,
  /^\s*(?:pub(?:\([a-z]+\))?\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_]\w*)/,
  /^\s*(?:pub(?:\([a-z]+\))?\s+)?(?:struct|enum|trait)\s+([A-Za-z_]\w*)/,
  /^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)/,
  /^\s*class\s+([A-Za-z_]\w*)/,
  /^func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)/,
  /^\s+(?:public|private|protected|static|async|\s)*([A-Za-z_$][\w$]*)\s*\([^)]*\)\s*(?::\s*[^{]+)?\{\s*$/,
];
const KEYWORDS = new Set(['if', 'for', 'while', 'switch', 'catch', 'return', 'constructor', 'function']);
const MAX_LINES = 30;

export function listSourceFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith('.')) walk(path.join(dir, entry.name));
      } else if (SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) {
        found.push(path.join(dir, entry.name));
      }
    }
  };
  if (fs.statSync(root).isDirectory()) walk(root);
  else found.push(root);
  return found.sort();
}

export function extractSymbols(file: string, source: string): CodeSymbol[] {
  const lines = source.split('\n');
  const starts: Array<{ line: number; name: string }> = [];
  lines.forEach((text, i) => {
    const name = declaredName(text);
    if (name) starts.push({ line: i, name });
  });
  return starts.map(({ line, name }, k) => {
    const end = Math.min(k + 1 < starts.length ? starts[k + 1].line : lines.length, line + MAX_LINES);
    const first = docCommentStart(lines, line);
    return { file, line: line + 1, name, text: lines.slice(first, end).join('\n').trim() };
  });
}

function declaredName(line: string): string | null {
  for (const pattern of DECLARATION) {
    const match = pattern.exec(line);
    if (match && !KEYWORDS.has(match[1])) return match[1];
  }
  return null;
}

function docCommentStart(lines: string[], line: number): number {
  let first = line;
  while (first > 0 && /^\s*(\/\/|\/\*|\*|#|""")/.test(lines[first - 1])) first--;
  return first;
}

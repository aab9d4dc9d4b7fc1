/**
 * Module boundaries: no import cycle among the gateway's own modules (type-only imports count too: a cycle of
 * types is a sign that two parts should share a types.ts), and the live-stream protocol that the browser
 * bundle also compiles imports nothing. Imports are read with TypeScript's own pre-processor, so multi-line,
 * `import type`, `export ... from` and dynamic imports are all seen.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Relative imports of a file, resolved to files (`./x.js` is `./x.ts` in the sources). */
function relativeImports(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles.map((i) => i.fileName).filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')))
    .filter((p) => existsSync(p));
}

/** Every import cycle under `dir`, each as the files it passes through (Tarjan's strongly connected components). */
function importCycles(dir: string): string[][] {
  const files = new Set(tsFiles(dir));
  // Only edges inside `dir`: an import leaving it (device-sim into src) cannot close a cycle of dir's own.
  const graph = new Map([...files].map((f) => [f, relativeImports(f).filter((p) => files.has(p))]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const part: string[] = [];
    let w: string;
    do { w = stack.pop()!; onStack.delete(w); part.push(w); } while (w !== v);
    if (part.length > 1 || graph.get(v)!.includes(v)) cycles.push(part.map((f) => relative(dir, f)).sort());
  };
  for (const f of graph.keys()) if (!index.has(f)) visit(f);
  return cycles;
}

describe('module boundaries', () => {
  it('finds a cycle when there is one (type-only and multi-line imports included)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cycles-'));
    try {
      writeFileSync(join(dir, 'a.ts'), "import type {\n  B,\n} from './b.js';\nexport type A = B;\n");
      writeFileSync(join(dir, 'b.ts'), "export { c } from './c.js';\nexport type B = number;\n");
      writeFileSync(join(dir, 'c.ts'), "import type { A } from './a.js';\nexport const c: A = 1;\n");
      writeFileSync(join(dir, 'd.ts'), "import { c } from './c.js';\nexport const d = c;\n");
      expect(importCycles(dir)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('src/ has no import cycle', () => {
    expect(importCycles(join(ROOT, 'src'))).toEqual([]);
  });

  it('device-sim/src and web/src have no import cycle', () => {
    expect(importCycles(join(ROOT, 'device-sim', 'src'))).toEqual([]);
    expect(importCycles(join(ROOT, 'web', 'src'))).toEqual([]);
  });

  it('the live-stream protocol shared with the browser imports nothing', () => {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(ROOT, 'src/live/protocol.ts'), 'utf8'), true, true);
    expect(importedFiles.map((i) => i.fileName)).toEqual([]);
  });
});

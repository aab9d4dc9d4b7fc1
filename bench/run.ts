/**
 * Runs every bench module (`bench/<name>.ts` exporting `run(): Promise<BenchResult[]>`), prints a table
 * and writes bench/results.json. `npm run bench` (= tsc && node dist/bench/run.js); optional arguments
 * pick modules by name: `node dist/bench/run.js codec stream`.
 * Benchmarks are not tests: they measure, print and record; a module that throws fails the run.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult } from './types.js';

/** Every bench module; only the codec is required, the others join when their owners add them. */
const MODULES = ['./codec.js', './alarms.js', './storage.js', './stream.js', './ingest.js', './ui.js', './record.js'];
const REQUIRED: ReadonlySet<string> = new Set(['./codec.js']);

type Outcome =
  | { module: string; status: 'ok'; results: BenchResult[]; seconds: number }
  | { module: string; status: 'not present' }
  | { module: string; status: 'failed'; error: string };

const moduleName = (spec: string): string => spec.replace(/^\.\//, '').replace(/\.js$/, '');

/** True only when the missing module is the bench file itself, not something it imports. */
function isMissingItself(err: unknown, spec: string): boolean {
  if ((err as { code?: string } | null)?.code !== 'ERR_MODULE_NOT_FOUND') return false;
  const url = new URL(spec, import.meta.url);
  const message = String((err as Error).message);
  return message.includes(fileURLToPath(url)) || message.includes(url.href);
}

async function runModule(spec: string): Promise<Outcome> {
  const module = moduleName(spec);
  let mod: { run?: unknown };
  try {
    mod = (await import(spec)) as { run?: unknown };
  } catch (err) {
    if (isMissingItself(err, spec)) {
      return REQUIRED.has(spec) ? { module, status: 'failed', error: 'required module missing' } : { module, status: 'not present' };
    }
    return { module, status: 'failed', error: err instanceof Error ? err.stack ?? err.message : String(err) };
  }
  if (typeof mod.run !== 'function') return { module, status: 'failed', error: 'does not export run()' };
  const start = process.hrtime.bigint();
  try {
    const results = (await (mod.run as () => Promise<BenchResult[]>)()) ?? [];
    return { module, status: 'ok', results, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  } catch (err) {
    return { module, status: 'failed', error: err instanceof Error ? err.stack ?? err.message : String(err) };
  }
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(4)).toString();
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]): string => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** The repository root: the nearest directory with a package.json above this file (src or dist). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above bench/run');
    dir = parent;
  }
  return dir;
}

export async function main(argv: string[]): Promise<number> {
  const wanted = argv.length > 0 ? MODULES.filter((m) => argv.includes(moduleName(m))) : MODULES;
  const outcomes: Outcome[] = [];
  for (const spec of wanted) {
    process.stdout.write(`bench ${moduleName(spec)} ...\n`);
    outcomes.push(await runModule(spec));
  }

  const rows = [['name', 'value', 'unit', 'target', 'baseline', 'note']];
  for (const o of outcomes) {
    if (o.status === 'ok') {
      for (const r of o.results) rows.push([r.name, formatValue(r.value), r.unit, r.target ?? '', r.baseline ?? '', r.note ?? '']);
    } else {
      rows.push([o.module, '', '', '', '', o.status === 'not present' ? 'not present' : `FAILED: ${o.error.split('\n')[0]}`]);
    }
  }
  process.stdout.write(`\n${table(rows)}\n`);
  for (const o of outcomes) if (o.status === 'failed') process.stderr.write(`\n${o.module} failed:\n${o.error}\n`);

  const dir = join(repoRoot(), 'bench');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'results.json');
  const report = {
    at: new Date().toISOString(),
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    loadavg: os.loadavg(),
    modules: outcomes.map((o) => (o.status === 'ok' ? { module: o.module, status: o.status, seconds: o.seconds } : o)),
    results: outcomes.flatMap((o) => (o.status === 'ok' ? o.results : [])),
  };
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(`\nwrote ${file}\n`);
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}

#!/usr/bin/env node
/**
 * Builds the browser screens: web/src/main.ts bundled by esbuild (uPlot included) into
 * dist/web/assets/app-<hash>.js and .css, and dist/web/index.html pointing at them. Nothing is fetched at run
 * time; the gateway serves dist/web (src/api/webRoutes.ts). `node scripts/build-web.mjs [--dev]`.
 */
import { build } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** @param {{ outDir?: string, minify?: boolean }} [opts] */
export async function buildWeb(opts = {}) {
  const outDir = opts.outDir ?? join(ROOT, 'dist', 'web');
  const assets = join(outDir, 'assets');
  mkdirSync(assets, { recursive: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: { app: 'web/src/main.ts' },
    bundle: true,
    format: 'esm',
    target: ['chrome110', 'firefox115', 'safari16'],
    minify: opts.minify ?? true,
    sourcemap: true,
    outdir: assets,
    entryNames: '[name]-[hash]',
    legalComments: 'linked',
    logLevel: 'warning',
    write: false,
  });
  // Each file is written to a temporary name and renamed, and files of older builds are removed only after:
  // a gateway (or a second build, e.g. two test files at once) never reads a half-written asset.
  const put = (path, contents) => {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, contents);
    renameSync(tmp, path);
  };
  const names = result.outputFiles.map((f) => basename(f.path));
  const js = names.find((n) => /^app-.*\.js$/.test(n));
  const css = names.find((n) => /^app-.*\.css$/.test(n));
  if (!js || !css) throw new Error(`build-web: missing outputs in ${names.join(', ')}`);
  for (const f of result.outputFiles) put(join(assets, basename(f.path)), f.contents);
  put(join(assets, 'favicon.svg'), readFileSync(join(ROOT, 'web', 'favicon.svg')));
  const html = readFileSync(join(ROOT, 'web', 'index.html'), 'utf8')
    .replace('%APP_JS%', `/assets/${js}`).replace('%APP_CSS%', `/assets/${css}`);
  put(join(outDir, 'index.html'), html);
  const keep = new Set([...names, 'favicon.svg']);
  for (const name of readdirSync(assets)) {
    if (!keep.has(name) && !name.endsWith('.tmp')) rmSync(join(assets, name), { force: true });
  }
  return { outDir, js, css };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await buildWeb({ minify: !process.argv.includes('--dev') });
  console.log(`web assets: ${r.outDir} (${r.js}, ${r.css})`);
}

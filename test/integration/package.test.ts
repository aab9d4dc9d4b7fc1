/**
 * The published package, used as a user's CI would: `npm pack`, install the tarball into an empty project, import
 * `msc-gateway` and `msc-gateway/sim` by name (package.json `exports`, not our source paths), type-check a user's
 * file against the shipped declarations, then start the simulator on a real mosquitto and the gateway against it,
 * see the console over HTTP, and stop both.
 *
 * The tarball is packed from dist/ as built (`npm test` and `npm ci` build it first; `prepare` builds it for a
 * plain `npm pack`, but compiling here would double this test's time): a dist/ older than the sources fails the
 * test rather than checking stale code. Dependencies come from the npm cache (`--offline`), or the registry when
 * the cache lacks them. better-sqlite3 is the one install script skipped: its prebuilt binary is downloaded from
 * outside the registry, so it would compile SQLite for minutes; the project's own build of the same version (pinned
 * with `overrides`) is copied in instead.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const npmEnv = { ...process.env, npm_config_cache: process.env.npm_config_cache ?? join(homedir(), '.npm'), npm_config_update_notifier: 'false' };

/** Every source file's compiled output exists and is not older than the source. */
function staleOutputs(): string[] {
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
        const out = join(ROOT, 'dist', relative(ROOT, full)).replace(/\.ts$/, '.js');
        if (!existsSync(out) || statSync(out).mtimeMs < statSync(full).mtimeMs) stale.push(relative(ROOT, full));
      }
    }
  };
  walk(join(ROOT, 'src'));
  walk(join(ROOT, 'device-sim/src'));
  return stale;
}

/** What a user's CI runs against the installed package: plain ESM, package names only. */
const USER_SCRIPT = `
import { startGateway, silentLogger } from 'msc-gateway';
import { startSimulator } from 'msc-gateway/sim';
const [mqttUrl, dataDir, token] = process.argv.slice(2);
const sha256 = (await import('node:crypto')).createHash('sha256').update(token).digest('hex');
const sim = await startSimulator({ transport: 'mqtt', mqttUrl, deviceIds: ['MSC-PACK'], seed: 5 });
let gw = null;
try {
  gw = await startGateway({
    http: { host: '127.0.0.1', port: 0 }, dataDir, mqtt: { url: mqttUrl, clientId: 'gw-pack' },
    auth: { tokens: [{ name: 'ci', role: 'viewer', sha256 }] },
  }, { logger: silentLogger() });
  const deadline = Date.now() + 20_000;
  let device = null;
  while (!device && Date.now() < deadline) {
    const r = await fetch(gw.url + '/api/devices', { headers: { authorization: 'Bearer ' + token } });
    device = (await r.json()).devices?.find((d) => d.id === 'MSC-PACK' && d.link === 'connected') ?? null;
    if (!device) await new Promise((r) => setTimeout(r, 100));
  }
  const health = await (await fetch(gw.url + '/healthz')).json();
  console.log(JSON.stringify({ device, ready: health.ready, framesSent: sim.stats().framesSent }));
} finally {
  await gw?.stop();
  await sim.stop();
}
`;

/** A user's TypeScript against the shipped declarations: wrong types or a missing `types` export fail here. */
const USER_TS = `
import { startGateway, parseConfig, type RunningGateway, type ConfigInput } from 'msc-gateway';
import { startSimulator, type Simulator } from 'msc-gateway/sim';
const config: ConfigInput = { http: { port: 0 }, dataDir: '/tmp/x', journal: true };
parseConfig(config).http.port satisfies number;
export async function both(): Promise<[RunningGateway, Simulator]> {
  const sim = await startSimulator({ transport: 'mqtt', mqttUrl: 'mqtt://127.0.0.1:1883', devices: 2 });
  const gw = await startGateway(config);
  gw.url satisfies string;
  sim.stats().framesSent satisfies number;
  return [gw, sim];
}
`;

describe('the npm package', () => {
  let work: string;
  let broker: MosquittoBroker | null = null;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'msc-pack-'));
  });
  afterAll(async () => {
    await broker?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('installs from its tarball, and both entry points start, talk over MQTT and stop', async () => {
    const stale = staleOutputs();
    expect(stale, 'dist/ is older than these sources: build first (npm run build; npm test does)').toEqual([]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.prepare).toMatch(/tsc -p tsconfig.json/); // a plain `npm pack` builds what it packs

    const { stdout: packed } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT, env: npmEnv });
    const [{ filename, files }] = JSON.parse(packed) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const paths = files.map((f) => f.path);
    for (const need of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/device-sim/src/index.js', 'dist/device-sim/src/index.d.ts',
      'dist/src/cli/index.js', 'dist/device-sim/src/cli.js', 'dist/web/index.html']) {
      expect(paths, need).toContain(need);
    }
    expect(paths.filter((p) => /^(src|test|bench|dist\/bench|dist\/test)\//.test(p))).toEqual([]);

    const project = join(work, 'user-project');
    mkdirSync(project);
    const sqliteVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8')).version as string;
    writeFileSync(join(project, 'package.json'), JSON.stringify({
      name: 'user-ci', version: '1.0.0', private: true, type: 'module', overrides: { 'better-sqlite3': sqliteVersion },
    }));
    const install = (mode: string) => run('npm', ['install', join(work, filename), mode, '--no-audit', '--no-fund', '--ignore-scripts'],
      { cwd: project, env: npmEnv, maxBuffer: 16 * 2 ** 20 });
    await install('--offline').catch(() => install('--prefer-offline'));
    const release = 'node_modules/better-sqlite3/build/Release';
    mkdirSync(join(project, release), { recursive: true });
    copyFileSync(join(ROOT, release, 'better_sqlite3.node'), join(project, release, 'better_sqlite3.node'));

    // Types: the user's file compiles against the declarations the exports name (the user's own @types/node).
    writeFileSync(join(project, 'user.ts'), USER_TS);
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true,
        types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')],
      },
      files: ['user.ts'],
    }));
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project })
      .catch((err: { stdout?: string }) => { throw new Error(`user.ts does not compile against the package:\n${err.stdout}`); });

    broker = await startMosquitto();
    writeFileSync(join(project, 'ci.mjs'), USER_SCRIPT);
    const token = randomBytes(24).toString('base64url');
    const { stdout } = await run(process.execPath, ['ci.mjs', broker.url, join(work, 'data'), token], { cwd: project, timeout: 45_000 });
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(result.device).toMatchObject({ id: 'MSC-PACK', link: 'connected' });
    expect(result.ready).toBe(true);
    expect(result.framesSent).toBeGreaterThan(0);
  }, 120_000);
});

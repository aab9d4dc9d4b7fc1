/**
 * Browser screens: Debian's Chromium (headless) against a real gateway with 16 simulated
 * consoles at 10 Hz over MQTT (in-process aedes broker). Measures the overview, then one console view whose
 * 15-minute chart is prefilled from history: frames per second (requestAnimationFrame over 10 s) and the
 * renderer's main-thread busy time per second (CDP Performance.getMetrics TaskDuration), as % of one core.
 * Targets: 60 fps, < 20 % of one core. Needs the built assets (`npm run bench` builds them) and /usr/bin/chromium.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { chromium, type Page } from 'playwright-core';
import { startSimulator } from '../device-sim/src/index.js';
import { parseConfig } from '../src/config.js';
import { Gateway } from '../src/gateway.js';
import { silentLogger } from '../src/log.js';
import { Journal } from '../src/storage/journal.js';
import type { BenchResult } from './types.js';

const CONSOLES = 16;
const RATE_HZ = 10;
const MEASURE_MS = 10_000;
const CHART_MS = 15 * 60_000;
/** The page's globals, typed here because the bench compiles without the DOM library. */
type PageGlobals = { requestAnimationFrame(cb: (t: number) => void): number; document: { querySelectorAll(s: string): { length: number } } };
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];

/** Frames per second and main-thread busy fraction of one core over `ms`. */
async function measure(page: Page, ms: number): Promise<{ fps: number; busy: number }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const task = async () => ((await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration')?.value ?? 0);
  const before = await task();
  const t0 = Date.now();
  const fps = await page.evaluate((span) => new Promise<number>((resolve) => {
    const { requestAnimationFrame } = globalThis as unknown as PageGlobals;
    let frames = 0;
    const start = performance.now();
    const tick = (now: number) => {
      frames++;
      if (now - start < span) requestAnimationFrame(tick);
      else resolve(frames / ((now - start) / 1000));
    };
    requestAnimationFrame(tick);
  }), ms);
  const busy = (await task() - before) / ((Date.now() - t0) / 1000);
  await cdp.detach();
  return { fps, busy };
}

/** 15 minutes of history for the viewed console, so the chart is full from the first frame. */
async function seedHistory(dataDir: string, device: string, until: number): Promise<void> {
  const journal = new Journal({ dataDir, commitIntervalMs: 60_000 });
  await journal.start();
  let seq = 1;
  for (let t = until - CHART_MS; t < until; t += 1000 / RATE_HZ) {
    journal.appendTelemetry({
      deviceId: device, sessionId: 'S-BENCH', seq: seq++, t, rx: t,
      v: { QB: 150 + Math.sin(t / 9000) * 3, PA: -80, PV: 110 + Math.sin(t / 7000) * 5, TMP: 40, DPR: 20, TR: 37, SQB: 150, STR: 37 },
    });
  }
  journal.flush();
  await journal.stop();
}

export async function run(): Promise<BenchResult[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'msc-bench-ui-'));
  const broker = await Aedes.createBroker();
  const brokerServer = createServer(broker.handle);
  brokerServer.listen(0, '127.0.0.1');
  await once(brokerServer, 'listening');
  const port = (brokerServer.address() as { port: number }).port;
  const mqttUrl = `mqtt://127.0.0.1:${port}`;
  await seedHistory(dataDir, 'BENCH-0001', Date.now() - 30_000);
  const gateway = new Gateway(parseConfig({
    http: { host: '127.0.0.1', port: 0 }, dataDir, mqtt: { url: mqttUrl, clientId: 'gw-bench-ui', protocolVersion: 4 },
  }), { logger: silentLogger() });
  await gateway.start();
  const made = gateway.tokens.add('bench', 'operator', { user: 'bench', role: 'admin' });
  if (!made.ok) throw new Error(`token: ${made.reason}`);
  const sim = await startSimulator({
    transport: 'mqtt', mqttUrl, devices: CONSOLES, idPrefix: 'BENCH', rate: RATE_HZ, autoRun: true,
    phases: { selftestMs: 200, primingMs: 300, rinsebackMs: 500 },
  });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
    await page.goto(gateway.httpUrl + '/');
    await page.fill('#token', made.value.token);
    await page.click('form.signin button[type=submit]');
    await page.waitForFunction((n) => (globalThis as unknown as PageGlobals).document.querySelectorAll('a.tile:not(.stale)').length >= n, CONSOLES, { timeout: 30_000 });
    const overview = await measure(page, MEASURE_MS);

    await page.click('a.tile[data-device="BENCH-0001"]');
    await page.waitForSelector('.console-view:not(.stale)');
    const points = await page.evaluate(() => (globalThis as unknown as PageGlobals).document.querySelectorAll('.trend canvas').length);
    const view = await measure(page, MEASURE_MS);

    const note = `Chromium headless, software rendering, ${CONSOLES} consoles × ${RATE_HZ} Hz live; shared 2-core machine`;
    return [
      { name: 'ui.overview.fps', value: overview.fps, unit: 'frames/s', target: '>= 60', note },
      { name: 'ui.overview.mainThread', value: overview.busy * 100, unit: '% of one core', target: '< 20', note },
      { name: 'ui.console15min.fps', value: view.fps, unit: 'frames/s', target: '>= 60', note: `${points} charts, 15 min window prefilled from history` },
      { name: 'ui.console15min.mainThread', value: view.busy * 100, unit: '% of one core', target: '< 20', note },
    ];
  } finally {
    await browser.close();
    await sim.stop();
    await gateway.stop();
    await new Promise<void>((r) => broker.close(() => r()));
    brokerServer.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().then((r) => console.table(r), (err) => { console.error(err); process.exit(1); });
}

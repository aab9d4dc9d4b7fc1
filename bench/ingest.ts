/**
 * MQTT ingest as deployed (docs/storage.md, "Measured"): the gateway is its own process (`dist/src/cli`), the
 * load comes from outside through mosquitto configured as deploy/mosquitto/mosquitto.conf recommends
 * (`max_inflight_messages 100`, a large queue), and the journal is on.
 *
 * 1. Throughput: N single-sample QoS 1 messages (then N/50 batches of 50) are queued at the broker for a
 *    persistent session, and the consumer drains them: the gateway (samples committed to its journal) beside a
 *    bare MQTT.js QoS 1 subscriber, same broker, same run. Targets: >= 15,000 messages/s and >= 0.5x bare;
 *    >= 150,000 samples/s in batches of 50.
 * 2. Live latency against a slow disk: 24 consoles x 25 Hz, one sample per QoS 1 message, 10 WebSocket clients,
 *    every fsync of the gateway process slowed by the LD_PRELOAD shim (test/faults/slow-fsync.c) by 0, 2, 5, 10
 *    and 20 ms; p50/p99 from device time to the client, share delivered, and journal lag (load end until the
 *    journal holds every sample). Both durability modes; the design before this change when
 *    MSC_BENCH_BEFORE_CLI names its built CLI (else its figures measured once are read from
 *    bench/ingest-before.json). Draws bench/ingest-latency.svg.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { encodeMqttPayload } from '../src/protocol/mqtt.js';
import type { TelemetryFrame } from '../src/protocol/types.js';
import { slowFsyncEnv } from '../test/faults/slowFsync.js';
import { startMosquitto, type MosquittoBroker } from '../test/helpers/mosquitto.js';
import { freePort } from '../test/helpers/net.js';
import { drawLatencyCurve, type CurvePoint } from './ingestSvg.js';
import type { BenchResult } from './types.js';

/** The repository root: the nearest directory with a package.json above this file (bench/ or dist/bench/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = resolve(dir, '..');
  return dir;
}
const ROOT = repoRoot();
const CLI = join(ROOT, 'dist/src/cli/index.js');
const CONSOLES = 24;
const RATE_HZ = 25;
const WS_CLIENTS = 10;
const LOAD_MS = 10_000;
/** MSC_BENCH_INGEST_DELAYS=0,10 measures those points only. */
const DELAYS_MS = (process.env.MSC_BENCH_INGEST_DELAYS ?? '0,2,5,10,20').split(',').map(Number);
const THROUGHPUT_MESSAGES = 120_000;
/** Batches of 50: 300,000 samples, a few seconds of steady state after the gateway's warm-up. */
const BATCH_MESSAGES = 6_000;
const PREFIX = 'msc/v1';
const CHILD_FLAG = '--ingest-bench-child';

const deviceId = (i: number) => `MSC-${String(9000 + i)}`;
const values = (i: number) => ({ QB: 150 + (i % 10) / 10, QP: 30.2, PA: -85.4, PV: 118.6 + (i % 7) / 10, TMP: 44.2, TR: 37.02, TB: 36.6 });
const hello = (id: string) => encodeMqttPayload({ type: 'HELLO', deviceId: id, model: 'MSC-R1', fw: '1.0.0', icd: 1, serialNo: `SN-${id}` });

function mqttConnect(url: string, opts: Parameters<typeof connect>[1]): Promise<MqttClient> {
  return new Promise((ok, fail) => {
    const c = connect(url, { reconnectPeriod: 0, ...opts });
    c.once('connect', () => ok(c));
    c.once('error', fail);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes: the load (publishers) and the WebSocket clients, so their CPU is not the consumer's.

async function childPublishQueued(url: string, messages: number, batch: number): Promise<void> {
  const c = await mqttConnect(url, { clientId: `bench-pub-${process.pid}`, protocolVersion: 5 });
  for (let d = 0; d < CONSOLES; d++) await c.publishAsync(`${PREFIX}/${deviceId(d)}/hello`, hello(deviceId(d)), { qos: 1, retain: true });
  const seq = new Array<number>(CONSOLES).fill(0);
  const t0 = Date.now();
  let inFlight: Array<Promise<unknown>> = [];
  for (let m = 0; m < messages; m++) {
    const d = m % CONSOLES;
    const frames: TelemetryFrame[] = [];
    for (let k = 0; k < batch; k++) {
      const s = ++seq[d];
      frames.push({ type: 'T', seq: s, t: t0 + m, v: values(s) });
    }
    inFlight.push(c.publishAsync(`${PREFIX}/${deviceId(d)}/telemetry`, encodeMqttPayload(batch === 1 ? frames[0] : frames), { qos: 1 }));
    if (inFlight.length >= 200) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  await c.endAsync();
}

async function childPublishLive(url: string, ms: number): Promise<{ sent: number }> {
  const clients = await Promise.all(Array.from({ length: CONSOLES }, (_, d) => mqttConnect(url, { clientId: `bench-live-${process.pid}-${d}`, protocolVersion: 5 })));
  await Promise.all(clients.map((c, d) => c.publishAsync(`${PREFIX}/${deviceId(d)}/hello`, hello(deviceId(d)), { qos: 1, retain: true })));
  let sent = 0;
  const start = Date.now();
  const seq = new Array<number>(CONSOLES).fill(0);
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      // Catch up to where 25 Hz puts each console now (timers are not exact on a loaded machine).
      const due = Math.floor(((Date.now() - start) * RATE_HZ) / 1000);
      for (let d = 0; d < CONSOLES; d++) {
        while (seq[d] < due) {
          const s = ++seq[d];
          void clients[d].publishAsync(`${PREFIX}/${deviceId(d)}/telemetry`, encodeMqttPayload({ type: 'T', seq: s, t: Date.now(), v: values(s) }), { qos: 1 });
          sent++;
        }
      }
      if (Date.now() - start >= ms) {
        clearInterval(timer);
        done();
      }
    }, 5);
  });
  await Promise.all(clients.map((c) => c.endAsync()));
  return { sent };
}

/**
 * The WebSocket clients, and beside them a bare MQTT.js QoS 1 subscriber on the same telemetry: what the
 * publishers and the broker alone add to the latency on this machine, measured in the same run.
 */
async function childWsClients(url: string, token: string, brokerUrl: string): Promise<void> {
  const ages: number[] = [];
  const bareAges: number[] = [];
  let measuring = false;
  const bare = await mqttConnect(brokerUrl, { clientId: `bench-live-bare-${process.pid}`, protocolVersion: 5 });
  (bare.stream as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
  await bare.subscribeAsync(`${PREFIX}/+/telemetry`, { qos: 1 });
  bare.on('message', (_topic, payload) => {
    if (measuring) bareAges.push(Date.now() - (JSON.parse(String(payload)) as { t: number }).t);
  });
  const sockets = await Promise.all(Array.from({ length: WS_CLIENTS }, () => new Promise<WebSocket>((ok, fail) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`, { headers: { authorization: `Bearer ${token}` } });
    ws.once('open', () => {
      ws.send(JSON.stringify({ type: 'subscribe', devices: '*' }));
      ok(ws);
    });
    ws.once('error', fail);
    ws.on('message', (data) => {
      if (!measuring) return;
      const m = JSON.parse(String(data)) as { type: string; t: number };
      if (m.type === 'telemetry') ages.push(Date.now() - m.t);
    });
  })));
  process.send!({ type: 'ready' });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'start') measuring = true;
    if (m.type === 'stop') {
      measuring = false;
      const q = (xs: number[], p: number) => {
        xs.sort((a, b) => a - b);
        return xs.length ? xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] : NaN;
      };
      process.send!({
        type: 'result', received: ages.length, p50: q(ages, 0.5), p99: q(ages, 0.99), bareP50: q(bareAges, 0.5), bareP99: q(bareAges, 0.99),
      }, () => {
        for (const ws of sockets) ws.terminate();
        bare.end(true);
        process.exit(0);
      });
    }
  });
}

if (process.argv[2] === CHILD_FLAG) {
  const [role, ...args] = process.argv.slice(3);
  const run = async () => {
    if (role === 'queued') await childPublishQueued(args[0], Number(args[1]), Number(args[2]));
    else if (role === 'live') process.send!({ type: 'result', ...(await childPublishLive(args[0], Number(args[1]))) });
    else if (role === 'ws') return childWsClients(args[0], args[1], args[2]);
    process.exit(0);
  };
  run().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}

function child(role: string, args: string[]): ChildProcess {
  return fork(fileURLToPath(import.meta.url), [CHILD_FLAG, role, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function message<T>(c: ChildProcess, type: string): Promise<T> {
  return new Promise((ok, fail) => {
    const on = (m: { type: string }) => {
      if (m.type === type) {
        c.off('message', on);
        ok(m as T);
      }
    };
    c.on('message', on);
    c.once('exit', (code) => fail(new Error(`bench child exited (${code}) before ${type}`)));
  });
}

const exited = (c: ChildProcess) => new Promise<void>((ok) => (c.exitCode !== null ? ok() : c.once('exit', () => ok())));

// ---------------------------------------------------------------------------------------------------------------
// The gateway process.

interface GatewayRun {
  url: string;
  token: string;
  proc: ChildProcess;
  committed(): Promise<number>;
  stop(): Promise<void>;
}

async function startGateway(cli: string, brokerUrl: string, clientId: string, env: NodeJS.ProcessEnv, durability: string | null): Promise<GatewayRun> {
  const dir = mkdtempSync(join(tmpdir(), 'msc-bench-ingest-'));
  const token = randomBytes(24).toString('base64url');
  const config = join(dir, 'gateway.json');
  writeFileSync(config, JSON.stringify({
    mqtt: { url: brokerUrl, clientId },
    dataDir: join(dir, 'data'),
    ...(durability ? { durability: { mode: durability } } : {}),
    auth: { tokens: [{ name: 'bench', role: 'admin', sha256: createHash('sha256').update(token).digest('hex') }] },
    log: { level: 'error' },
  }));
  const port = await freePort();
  // MSC_BENCH_GATEWAY_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) go to the gateway's node only.
  const nodeArgs = (process.env.MSC_BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, cli, '--config', config, '--http', `127.0.0.1:${port}`], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const health = await fetch(`${url}/healthz`).then((r) => r.json() as Promise<{ ready: boolean }>).catch(() => null);
    if (health?.ready) break;
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`gateway ${cli} did not become ready`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url, token, proc,
    async committed() {
      const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      return Number(/^msc_journal_committed_total (\d+)$/m.exec(text)?.[1] ?? NaN);
    },
    async stop() {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 8_000);
      await exited(proc);
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Throughput from a full broker queue.

async function queue(broker: MosquittoBroker, messages: number, batch: number): Promise<void> {
  const pub = child('queued', [broker.url, String(messages), String(batch)]);
  await exited(pub);
  if (pub.exitCode !== 0) throw new Error('publisher failed');
}

/** Samples per second a bare MQTT.js QoS 1 subscriber drains from its persistent session's queue. */
async function bareRate(broker: MosquittoBroker, messages: number, batch: number): Promise<number> {
  const clientId = `bench-bare-${randomBytes(3).toString('hex')}`;
  const opts = { clientId, clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 3600 } };
  const first = await mqttConnect(broker.url, opts);
  await first.subscribeAsync(`${PREFIX}/+/#`, { qos: 1 });
  await first.endAsync();
  await queue(broker, messages, batch);
  let received = 0;
  let t0 = 0;
  const done = new Promise<number>((ok) => {
    const c = connect(broker.url, { ...opts, reconnectPeriod: 0 });
    c.on('message', (topic, payload) => {
      if (!topic.endsWith('/telemetry')) return;
      if (received === 0) t0 = performance.now();
      received += batch === 1 ? 1 : (JSON.parse(String(payload)) as unknown[]).length;
      if (received >= messages * batch) {
        const s = (performance.now() - t0) / 1000;
        c.end(true, {}, () => ok((received - batch) / s));
      }
    });
  });
  return done;
}

/**
 * CPU time of a process so far, ms (Linux /proc, clock ticks): its main thread (the event loop) and all its threads.
 * Robust where rates are not: on a shared machine the wall clock counts other processes' time, this does not.
 */
function cpuMs(pid: number): { loop: number; all: number } | null {
  const ticks = (file: string) => {
    const stat = readFileSync(file, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime, in USER_HZ (100) ticks
  };
  try {
    return { loop: ticks(`/proc/${pid}/task/${pid}/stat`) * 10, all: ticks(`/proc/${pid}/stat`) * 10 };
  } catch {
    return null;
  }
}

interface GatewayRate {
  rate: number;
  /** CPU µs per sample over the measured part: the event loop's, and all the gateway's threads' (null off Linux). */
  loopUs: number | null;
  allUs: number | null;
}

/** Samples per second the gateway commits to its journal, draining its persistent session's queue. */
async function gatewayRate(broker: MosquittoBroker, messages: number, batch: number): Promise<GatewayRate> {
  const clientId = `bench-gw-${randomBytes(3).toString('hex')}`;
  // The gateway's session must exist before the load is queued for it.
  const session = await startGateway(CLI, broker.url, clientId, {}, null);
  await session.stop();
  await queue(broker, messages, batch);
  const gw = await startGateway(CLI, broker.url, clientId, {}, null);
  try {
    const total = messages * batch;
    let first: { n: number; at: number; cpu: ReturnType<typeof cpuMs> } | null = null;
    for (;;) {
      const n = await gw.committed();
      const at = performance.now();
      const cpu = cpuMs(gw.proc.pid!);
      if (first === null && n > 0 && n < total) first = { n, at, cpu };
      if (n >= total) {
        if (!first) throw new Error('drained before the first measurement: raise THROUGHPUT_MESSAGES');
        const perSample = (a: number | undefined, b: number | undefined) =>
          a === undefined || b === undefined ? null : ((b - a) * 1000) / (n - first!.n);
        return {
          rate: (n - first.n) / ((at - first.at) / 1000),
          loopUs: perSample(first.cpu?.loop, cpu?.loop), allUs: perSample(first.cpu?.all, cpu?.all),
        };
      }
      // Polled 10 times a second: /metrics costs the gateway CPU too.
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await gw.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Live latency against a slow disk.

async function livePoint(broker: MosquittoBroker, cli: string, design: string, durability: string | null, delayMs: number): Promise<CurvePoint> {
  const gw = await startGateway(cli, broker.url, `bench-live-gw-${randomBytes(3).toString('hex')}`, slowFsyncEnv({ delayMs }), durability);
  try {
    const ws = child('ws', [gw.url, gw.token, broker.url]);
    await message(ws, 'ready');
    const committedBefore = await gw.committed();
    ws.send({ type: 'start' });
    const pub = child('live', [broker.url, String(LOAD_MS)]);
    const { sent } = await message<{ sent: number }>(pub, 'result');
    const loadEnd = performance.now();
    await exited(pub);
    // Journal lag: from the end of the load until the journal holds every sample (capped at 20 s), measured
    // while the last messages still reach the clients.
    const lag = (async () => {
      for (;;) {
        if ((await gw.committed()) - committedBefore >= sent) return (performance.now() - loadEnd) / 1000;
        if (performance.now() - loadEnd > 20_000) return NaN;
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    // What is still on its way to the clients arrives within a second when the path keeps up.
    await new Promise((res) => setTimeout(res, 1_000));
    ws.send({ type: 'stop' });
    const r = await message<{ received: number; p50: number; p99: number; bareP50: number; bareP99: number }>(ws, 'result');
    await exited(ws);
    const lagS = await lag;
    return {
      design, delayMs, p50: r.p50, p99: r.p99, delivered: r.received / (sent * WS_CLIENTS), journalLagS: lagS,
      brokerP50: r.bareP50, brokerP99: r.bareP99,
    };
  } finally {
    await gw.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: npm run bench builds it`);
  const broker = await startMosquitto({ config: ['max_inflight_messages 100', 'max_queued_messages 1000000', 'max_queued_bytes 0', 'set_tcp_nodelay true'] });
  // MSC_BENCH_INGEST=single, =batch or =live runs that part only (all three by default).
  const only = process.env.MSC_BENCH_INGEST ?? '';
  try {
    return [
      ...(only === '' || only === 'single' ? await singleThroughput(broker) : []),
      ...(only === '' || only === 'batch' ? await batchThroughput(broker) : []),
      ...(only === '' || only === 'live' ? await liveCurve(broker) : []),
    ];
  } finally {
    await broker.stop();
  }
}

/** Bare subscriber and gateway draining the same queued load, 3 alternating pairs (the machine drifts). */
async function pairedRates(broker: MosquittoBroker, messages: number, batch: number) {
  const bare: number[] = [];
  const gw: number[] = [];
  const loopUs: number[] = [];
  const allUs: number[] = [];
  for (let i = 0; i < 3; i++) {
    bare.push(await bareRate(broker, messages, batch));
    const g = await gatewayRate(broker, messages, batch);
    gw.push(g.rate);
    if (g.loopUs !== null && g.allUs !== null) {
      loopUs.push(g.loopUs);
      allUs.push(g.allUs);
    }
  }
  const ratios = gw.map((g, i) => g / bare[i]);
  const runs = (xs: number[], f: (x: number) => string) => `runs ${xs.map(f).join(', ')}`;
  const us = (x: number) => x.toFixed(1);
  return {
    bare, gw, ratios, rateRuns: runs(gw, (x) => String(Math.round(x))), ratioRuns: runs(ratios, (r) => r.toFixed(2)),
    cpu: loopUs.length === 0 ? null : {
      loop: median(loopUs), all: median(allUs), loopRuns: runs(loopUs, us), allRuns: runs(allUs, us),
    },
  };
}

/** The gateway's CPU per sample (or message), when the platform tells it. */
function cpuResults(prefix: string, unit: string, cpu: Awaited<ReturnType<typeof pairedRates>>['cpu']): BenchResult[] {
  if (!cpu) return [];
  return [
    { name: `${prefix}.loopCpu`, value: Math.round(cpu.loop * 10) / 10, unit, note: `event loop (main thread) CPU, ${cpu.loopRuns}` },
    { name: `${prefix}.processCpu`, value: Math.round(cpu.all * 10) / 10, unit, note: `all the gateway's threads, ${cpu.allRuns}` },
  ];
}

/** One sample per message: medians of the pairs. */
async function singleThroughput(broker: MosquittoBroker): Promise<BenchResult[]> {
  const r = await pairedRates(broker, THROUGHPUT_MESSAGES, 1);
  return [
    { name: 'ingest.mqtt.single.gateway', value: median(r.gw), unit: 'messages/s', target: '>= 15000', note: r.rateRuns },
    { name: 'ingest.mqtt.single.bare', value: median(r.bare), unit: 'messages/s', note: `bare MQTT.js QoS 1 subscriber, runs ${r.bare.map(Math.round).join(', ')}` },
    { name: 'ingest.mqtt.single.ratio', value: median(r.ratios), unit: 'x bare', target: '>= 0.5', baseline: 'bare MQTT.js QoS 1, same run', note: r.ratioRuns },
    ...cpuResults('ingest.mqtt.single', 'µs/message', r.cpu),
  ];
}

/** Batches of 50 samples: medians of the pairs. */
async function batchThroughput(broker: MosquittoBroker): Promise<BenchResult[]> {
  const r = await pairedRates(broker, BATCH_MESSAGES, 50);
  return [
    { name: 'ingest.mqtt.batch50.gateway', value: median(r.gw), unit: 'samples/s', target: '>= 150000', note: r.rateRuns },
    { name: 'ingest.mqtt.batch50.ratio', value: median(r.ratios), unit: 'x bare', baseline: `bare ${Math.round(median(r.bare))} samples/s, same run`, note: r.ratioRuns },
    // 150,000 samples/s leaves 6.7 µs a sample on the event loop.
    ...cpuResults('ingest.mqtt.batch50', 'µs/sample', r.cpu),
  ];
}

/** Live latency and journal lag against fsync delay, per design; draws the curve. */
async function liveCurve(broker: MosquittoBroker): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const designs: Array<{ design: string; cli: string; durability: string | null }> = [
    { design: 'relaxed (default)', cli: CLI, durability: 'relaxed' },
    { design: 'strict', cli: CLI, durability: 'strict' },
  ];
  const beforeCli = process.env.MSC_BENCH_BEFORE_CLI;
  if (beforeCli) designs.push({ design: 'before (ack after each fsync)', cli: beforeCli, durability: null });
  const points: CurvePoint[] = [];
  for (const d of designs) for (const delay of DELAYS_MS) points.push(await livePoint(broker, d.cli, d.design, d.durability, delay));
  const beforeFile = join(ROOT, 'bench/ingest-before.json');
  if (beforeCli) writeFileSync(beforeFile, JSON.stringify(points.filter((p) => p.design.startsWith('before')), null, 2) + '\n');
  else if (existsSync(beforeFile)) points.push(...(JSON.parse(readFileSync(beforeFile, 'utf8')) as CurvePoint[]));
  for (const p of points.filter((x) => !x.design.startsWith('before'))) {
    const tag = `${p.design.split(' ')[0]}.fsync+${p.delayMs}ms`;
    const target = p.delayMs === 10 && p.design.startsWith('relaxed');
    results.push(
      { name: `ingest.live.${tag}.p99`, value: p.p99, unit: 'ms', target: target ? '< 20' : undefined, note: `p50 ${p.p50} ms; publishers + broker alone (bare subscriber, same run): p50 ${p.brokerP50 ?? '-'} ms, p99 ${p.brokerP99 ?? '-'} ms` },
      { name: `ingest.live.${tag}.delivered`, value: Math.round(p.delivered * 10_000) / 100, unit: '%', target: target ? '>= 99.9' : undefined },
      { name: `ingest.live.${tag}.journalLag`, value: p.journalLagS ?? NaN, unit: 's', note: 'load end until the journal holds every sample (NaN: not within 20 s)' },
    );
  }
  writeFileSync(join(ROOT, 'bench/ingest-points.json'), JSON.stringify(points, null, 2) + '\n');
  const svg = join(ROOT, 'bench/ingest-latency.svg');
  writeFileSync(svg, drawLatencyCurve(points));
  results.push({ name: 'ingest.curve', value: points.length, unit: 'points', note: `drawn in ${svg}` });
  return results;
}

/**
 * Storage benchmark, in one run against one real influxd:
 *  - journal append throughput, one core (target ≥ 100,000 samples/s);
 *  - forwarder drain throughput versus a raw bulk write of the very same line protocol in
 *    5,000-line batches with plain fetch (target ratio ≥ 0.85);
 *  - drain speed relative to real time at the reference load, 24 consoles × 25 Hz (target ≥ 20×).
 * Medians over REPS repetitions; fresh databases each time.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TelemetrySample } from '../src/bus.js';
import { InfluxForwarder } from '../src/storage/forwarder.js';
import { Journal } from '../src/storage/journal.js';
import { startInfluxd, type InfluxdHandle } from '../test/helpers/influxd.js';
import type { BenchResult } from './types.js';

const CONSOLES = 24;
const HZ = 25;
const SECONDS = 300; // 24 × 25 × 300 = 180,000 samples
const REFERENCE_RATE = CONSOLES * HZ;
const REPS = 5;
const T0 = 1_764_061_200_000;
const CHANNELS = ['QB', 'QP', 'QR', 'PA', 'PF', 'PV', 'PP', 'TMP', 'DPR', 'TR', 'TB', 'HEP', 'AIR', 'BLD', 'SQB', 'SQP'];
const TYPICAL = [150, 30, 200, -85, 142, 118, 86, 44, 20, 37, 36.6, 5, 0, 0, 150, 30];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Realistic load: one decimal for flows and pressures, two for temperatures, like the ICD example. */
function makeSamples(): TelemetrySample[] {
  const out: TelemetrySample[] = [];
  let noise = 12345;
  const rnd = () => ((noise = (noise * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  for (let tick = 0; tick < SECONDS * HZ; tick++) {
    for (let c = 0; c < CONSOLES; c++) {
      const v: Record<string, number> = {};
      CHANNELS.forEach((key, i) => {
        const decimals = key === 'TR' || key === 'TB' ? 100 : 10;
        v[key] = i >= 12 && i < 14 ? 0 : Math.round((TYPICAL[i] + rnd() * 4) * decimals) / decimals;
      });
      const t = T0 + tick * (1000 / HZ) + c;
      out.push({ deviceId: `MSC-${String(c + 1).padStart(4, '0')}`, sessionId: `S-20261125-${c + 1}`, seq: tick, t, rx: t + 3, v });
    }
  }
  return out;
}

/** Appends everything, committing every 10,000 samples (100 ms of appends at the target rate). */
async function appendAll(dir: string, samples: TelemetrySample[]): Promise<{ journal: Journal; perSecond: number }> {
  const journal = new Journal({ dataDir: dir, commitIntervalMs: 60_000 });
  await journal.start();
  const start = process.hrtime.bigint();
  for (let i = 0; i < samples.length; i++) {
    journal.appendTelemetry(samples[i]);
    if (i % 10_000 === 9_999) journal.flush();
  }
  journal.flush();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { journal, perSecond: samples.length / seconds };
}

/** The exact request bodies the forwarder sends, captured by a local HTTP endpoint. */
async function captureLineProtocol(journal: Journal): Promise<string[]> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url?.startsWith('/write')) {
        bodies.push(body);
        res.writeHead(204).end();
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"results":[{"statement_id":0}]}');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const f = new InfluxForwarder({ journal, config: { url: `http://127.0.0.1:${port}/capture`, cursorName: 'capture' } });
  await f.start();
  await untilDrained(f);
  await f.stop();
  await new Promise<void>((r) => server.close(() => r()));
  return bodies;
}

async function untilDrained(f: InfluxForwarder): Promise<void> {
  for (;;) {
    const s = f.status();
    if (s.lines === 0 && s.written > 0) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The bodies POSTed as they are, `inFlight` requests at a time, in order. */
async function rawWrite(influxd: InfluxdHandle, db: string, bodies: string[], inFlight: number): Promise<number> {
  await influxd.query(`CREATE DATABASE "${db}"`, db); // outside the timing, as for the forwarder
  const lines = bodies.reduce((n, b) => n + b.split('\n').length, 0);
  const start = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const res = await fetch(`${influxd.url}/write?db=${db}&precision=ms`, { method: 'POST', body });
      if (res.status !== 204) throw new Error(`raw write ${res.status}: ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return lines / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Lines/s of a drain from cursor 0, and the gateway's CPU time per line (µs) while it ran. */
async function forwarderDrain(
  influxd: InfluxdHandle, db: string, journal: Journal, inFlight?: number,
): Promise<{ rate: number; cpuUs: number }> {
  // Created beforehand, as for the raw write: the forwarder's own CREATE DATABASE is then a no-op.
  await influxd.query(`CREATE DATABASE "${db}"`, db);
  const f = new InfluxForwarder({ journal, config: { url: `${influxd.url}/${db}`, cursorName: db, inFlight } });
  const lines = f.status().lines;
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await f.start();
  await untilDrained(f);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  await f.stop();
  if (f.status().written !== lines) throw new Error(`forwarder wrote ${f.status().written} of ${lines} lines`);
  return { rate: lines / seconds, cpuUs: (used.user + used.system) / lines };
}

export async function run(): Promise<BenchResult[]> {
  const samples = makeSamples();
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'msc-bench-storage-'));
    dirs.push(d);
    return d;
  };
  const influxd = await startInfluxd();
  try {
    const appendRates: number[] = [];
    let journal: Journal | null = null;
    for (let r = 0; r < REPS; r++) {
      const made = await appendAll(tmp(), samples);
      appendRates.push(made.perSecond);
      if (journal) await made.journal.stop();
      else journal = made.journal;
    }
    const j = journal!;
    const bytesPerSample = j.status().dbBytes / samples.length;
    const bodies = await captureLineProtocol(j);

    const raw: number[] = [];
    const raw2: number[] = [];
    const fwd: number[] = [];
    const fwd1: number[] = [];
    const cpu: number[] = [];
    for (let r = 0; r < REPS; r++) {
      // Rotate the order so no side always meets a warmer (or busier) influxd.
      const steps = [
        async () => raw.push(await rawWrite(influxd, `bench_raw_${r}`, bodies, 1)),
        async () => raw2.push(await rawWrite(influxd, `bench_raw2_${r}`, bodies, 2)),
        async () => {
          const d = await forwarderDrain(influxd, `bench_fwd_${r}`, j);
          fwd.push(d.rate);
          cpu.push(d.cpuUs);
        },
        async () => fwd1.push((await forwarderDrain(influxd, `bench_fwd1_${r}`, j, 1)).rate),
      ];
      for (let k = 0; k < steps.length; k++) await steps[(k + r) % steps.length]();
    }
    await j.stop();
    const ratios = raw.map((x, i) => fwd[i] / x);
    const ratios2 = raw2.map((x, i) => fwd[i] / x);
    const note = `load ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores; ${samples.length} samples, ${CONSOLES} consoles × ${HZ} Hz × ${SECONDS} s, ${CHANNELS.length} channels; median of ${REPS}`;
    return [
      { name: 'storage.journalAppend', value: median(appendRates), unit: 'samples/s', target: '>= 100000', note: `${note}; commit every 10,000` },
      { name: 'storage.journalBytesPerSample', value: bytesPerSample, unit: 'bytes', note: 'journal.sqlite + WAL / samples' },
      { name: 'storage.influxRawWrite', value: median(raw), unit: 'lines/s', note: `fetch POST /write, ${bodies.length} batches of ≤ 5,000 lines (${note})` },
      { name: 'storage.forwarderDrain', value: median(fwd), unit: 'lines/s', baseline: 'storage.influxRawWrite', note: `defaults (2 writes in flight, the next batch built meanwhile); ${note}` },
      {
        name: 'storage.forwarderCpuPerLine', value: median(cpu), unit: 'µs/line',
        note: 'gateway CPU (user+system) during a drain ÷ lines: the share the forwarder takes from InfluxDB on a shared machine',
      },
      { name: 'storage.forwarderDrainInFlight1', value: median(fwd1), unit: 'lines/s', baseline: 'storage.influxRawWrite', note: 'inFlight: 1 (one write at a time)' },
      { name: 'storage.influxRawWrite2', value: median(raw2), unit: 'lines/s', note: 'the same bodies, 2 requests in flight like the forwarder' },
      {
        name: 'storage.forwarderVsRaw', value: median(ratios), unit: 'ratio', target: '>= 0.85',
        note: 'forwarder (defaults) lines/s ÷ raw bulk write in sequential 5,000-line batches (the issue\'s baseline), per repetition',
      },
      { name: 'storage.forwarderVsRaw2', value: median(ratios2), unit: 'ratio', note: 'forwarder (defaults) ÷ raw with 2 requests in flight: like for like' },
      {
        name: 'storage.drainVsRealTime', value: median(fwd) / REFERENCE_RATE, unit: '× real time', target: '>= 20',
        note: `forwarder lines/s ÷ ${REFERENCE_RATE} samples/s (24 consoles × 25 Hz)`,
      },
    ];
  } finally {
    await influxd.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

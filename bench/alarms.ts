/**
 * Alarm engine cost: rule evaluation per telemetry frame with the default profile and
 * 24 devices RUNNING (target < 3 µs per frame), and alarm latency from the frame that completes a zero-delay
 * condition (AIR = 1) to the `alarm` event on the real EventBus (target p99 < 5 ms).
 */
import type { TelemetrySample } from '../src/bus.js';
import { EventBus } from '../src/bus.js';
import { compileRules } from '../src/alarms/compile.js';
import { AlarmEngine } from '../src/alarms/engine.js';
import { AlarmEvaluator } from '../src/alarms/evaluator.js';
import { defaultProfile, resolveRules } from '../src/alarms/rules.js';
import { ManualClock } from '../src/util/clock.js';
import type { BenchResult } from './types.js';
import { createRng } from '../device-sim/src/rng.js';

const DEVICES = 24;
const FRAMES_PER_DEVICE = 10_000;
const RUNS = 7;
const LATENCY_SAMPLES = 2000;
const T0 = 1764061200000;

/** ICD §1 channels with RUNNING values: 16 measured channels and the 4 setpoints of a full frame. */
const CHANNELS: Array<[key: string, mid: number, step: number]> = [
  ['QB', 150, 0.5], ['QP', 30, 0.2], ['QR', 200, 0.5], ['PA', -85, 0.8], ['PF', 150, 0.8], ['PV', 110, 0.8],
  ['PP', 85, 0.5], ['TMP', 45, 0.4], ['DPR', 25, 0.2], ['TR', 37, 0.01], ['TB', 36.6, 0.01], ['HEP', 5, 0],
  ['AIR', 0, 0], ['BLD', 0, 0], ['PH', 7.38, 0.005], ['DO', 80, 0.3],
  ['SQB', 150, 0], ['SQP', 30, 0], ['STR', 37, 0], ['SHEP', 5, 0],
];

/** Interleaved 10 Hz frames of every device, values random-walking inside their normal ranges. */
function frames(): TelemetrySample[] {
  const rng = createRng(3); // the simulator's seeded mulberry32
  const random = () => rng.next();
  const level = Array.from({ length: DEVICES }, () => CHANNELS.map(([, mid]) => mid));
  const out: TelemetrySample[] = [];
  for (let i = 0; i < FRAMES_PER_DEVICE; i++) {
    for (let d = 0; d < DEVICES; d++) {
      const v: Record<string, number> = {};
      CHANNELS.forEach(([key, mid, step], c) => {
        level[d][c] += (random() - 0.5) * 2 * step + (mid - level[d][c]) * 0.05;
        v[key] = Math.round(level[d][c] * 100) / 100;
      });
      const t = T0 + i * 100;
      out.push({ deviceId: `MSC-${String(d).padStart(4, '0')}`, sessionId: `S-${d}`, seq: i, t, rx: t + 5, v });
    }
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

interface Timing { wallNs: number; cpuNs: number }

/** Wall-clock and CPU time per frame: the machine may be shared, and CPU time is the cost itself. */
function timed(frames: number, fn: () => void): Timing {
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  fn();
  const wallNs = Number(process.hrtime.bigint() - start) / frames;
  const cpu = process.cpuUsage(cpu0);
  return { wallNs, cpuNs: ((cpu.user + cpu.system) * 1000) / frames };
}

function evaluationNsPerFrame(samples: TelemetrySample[]): Timing[] {
  const compiled = compileRules(resolveRules(defaultProfile, 'any', null), defaultProfile.technical);
  const results: Timing[] = [];
  let raised = 0;
  for (let run = -1; run < RUNS; run++) {
    const ev = new AlarmEvaluator({ condition: () => { raised++; } }, { rulesFor: () => compiled });
    for (let d = 0; d < DEVICES; d++) {
      ev.onState({ deviceId: samples[d].deviceId, seq: 0, t: T0 - 1000, rx: T0 - 1000, state: 'RUNNING', sessionId: `S-${d}`, previous: 'PRIMED' });
    }
    const t = timed(samples.length, () => {
      for (let i = 0; i < samples.length; i++) ev.onTelemetry(samples[i]);
    });
    if (run >= 0) results.push(t); // run -1 warms the JIT up
  }
  if (raised > 0) throw new Error(`the normal frames raised ${raised} conditions: the bench data is not realistic`);
  return results;
}

function engineNsPerFrame(samples: TelemetrySample[]): Timing[] {
  const results: Timing[] = [];
  for (let run = -1; run < Math.min(RUNS, 5); run++) {
    const bus = new EventBus();
    const engine = new AlarmEngine({
      bus, devices: { get: () => undefined, list: () => [] }, now: () => T0,
      clock: new ManualClock(T0), // never advanced: no technical tick during the bench
    });
    engine.start();
    for (let d = 0; d < DEVICES; d++) {
      bus.emit('state', { deviceId: samples[d].deviceId, seq: 0, t: T0 - 1000, rx: T0 - 1000, state: 'RUNNING', sessionId: `S-${d}`, previous: 'PRIMED' });
    }
    const t = timed(samples.length, () => {
      for (let i = 0; i < samples.length; i++) bus.emit('telemetry', samples[i]);
    });
    engine.stop();
    if (run >= 0) results.push(t);
  }
  return results;
}

/** From bus `telemetry` carrying AIR = 1 to bus `alarm` (raise), amid normal traffic of 24 devices. */
async function latencyMs(samples: TelemetrySample[]): Promise<number[]> {
  const bus = new EventBus();
  let now = T0;
  const engine = new AlarmEngine({
    bus, devices: { get: () => undefined, list: () => [] }, now: () => now,
    clock: new ManualClock(T0), // never advanced: no technical tick during the bench
  });
  engine.start();
  for (let d = 0; d < DEVICES; d++) {
    bus.emit('state', { deviceId: samples[d].deviceId, seq: 0, t: T0 - 1000, rx: T0 - 1000, state: 'RUNNING', sessionId: `S-${d}`, previous: 'PRIMED' });
  }
  let raisedAt = 0n;
  const owner = {};
  bus.on(owner, 'alarm', (t) => { if (t.kind === 'raise' && raisedAt === 0n) raisedAt = process.hrtime.bigint(); });
  const out: number[] = [];
  const stride = Math.floor(samples.length / LATENCY_SAMPLES);
  for (let k = 0; k < LATENCY_SAMPLES; k++) {
    for (let i = k * stride; i < (k + 1) * stride - 1; i++) bus.emit('telemetry', samples[i]);
    const normal = samples[(k + 1) * stride - 1];
    now = normal.rx;
    const air: TelemetrySample = { ...normal, v: { ...normal.v, AIR: 1 } };
    raisedAt = 0n;
    const sent = process.hrtime.bigint();
    bus.emit('telemetry', air);
    if (raisedAt === 0n) throw new Error('AIR = 1 did not raise AIR_IN_LINE');
    out.push(Number(raisedAt - sent) / 1e6);
    bus.emit('telemetry', { ...normal, t: normal.t + 1, rx: normal.rx + 1 });
    engine.ack(`${normal.deviceId}:AIR_IN_LINE`, { user: 'bench', role: 'operator' });
    if (k % 100 === 0) await new Promise((r) => setImmediate(r)); // let the debounced persistence run
  }
  engine.stop();
  bus.removeOwner(owner);
  return out.sort((a, b) => a - b);
}

export async function run(): Promise<BenchResult[]> {
  const samples = frames();
  const evalNs = evaluationNsPerFrame(samples);
  const engineNs = engineNsPerFrame(samples);
  const latency = await latencyMs(samples);
  const note = `${DEVICES} devices RUNNING, ${CHANNELS.length} keys per frame, default profile `
    + `(${defaultProfile.rules.length} rules), median of ${RUNS} runs of ${samples.length} frames`;
  const wall = (ts: Timing[]) => `wall-clock median ${Math.round(median(ts.map((t) => t.wallNs)))} ns`;
  return [
    {
      name: 'alarms.evaluatePerFrame', value: median(evalNs.map((t) => t.cpuNs)), unit: 'ns/frame (CPU)', target: '< 3000',
      note: `evaluator alone; ${note}; ${wall(evalNs)}`,
    },
    {
      name: 'alarms.enginePerFrame', value: median(engineNs.map((t) => t.cpuNs)), unit: 'ns/frame (CPU)',
      note: `through the EventBus and AlarmEngine (link supervision + evaluator); ${wall(engineNs)}`,
    },
    { name: 'alarms.latencyP50', value: quantile(latency, 0.5), unit: 'ms', note: 'bus telemetry (AIR = 1) → bus alarm raise' },
    { name: 'alarms.latencyP99', value: quantile(latency, 0.99), unit: 'ms', target: '< 5', note: `${latency.length} raises amid 24-device traffic` },
  ];
}

/**
 * Programmatic API of the device simulator: start N simulated consoles on a serial path (or a pty
 * pair it makes) or an MQTT broker, optionally run a scenario, read what was sent, stop.
 */
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { parseSimAction } from './actions.js';
import type { SimActionInput } from './actions.js';
import { SimClock } from './clock.js';
import { SimulatedConsole } from './console.js';
import type { PhaseDurations } from './console.js';
import { FrameLedger } from './ledger.js';
import type { RecordedFrame, SimulatorStats } from './ledger.js';
import { MqttLink } from './mqttLink.js';
import { PtyPeerWatch, createPtyPair } from './pty.js';
import type { PtyPair } from './pty.js';
import { createRng, deriveSeed } from './rng.js';
import { ScenarioRunner, applyAction, loadScenarioFile, selectTargets } from './scenario.js';
import type { Scenario } from './scenario.js';
import { SerialLink } from './serialLink.js';
import type { SimLink } from './serialLink.js';

export { SimClock } from './clock.js';
export { SimulatedConsole } from './console.js';
export type { ConsoleFrame, ConsoleOptions, PhaseDurations } from './console.js';
export type { DeviceStats, RecordedFrame, SimulatorStats } from './ledger.js';
export { loadScenarioFile, parseScenario } from './scenario.js';
export type { Scenario, ScenarioEvent } from './scenario.js';
export type { SimAction, SimActionInput } from './actions.js';
export { createPtyPair } from './pty.js';

export interface SimulatorOptions {
  transport: 'serial' | 'mqtt';
  /** Serial: the device end of the line (e.g. one end of a pty pair). */
  serialPath?: string;
  /** Serial: make a socat pty pair; the gateway opens `Simulator.gatewayPath`. */
  pty?: boolean;
  mqttUrl?: string;
  /**
   * MQTT user name; with a password and no user name, each console logs in as its own device id (the user
   * scripts/mqtt-add-console.sh makes), so one password serves one console or several that share it.
   */
  mqttUsername?: string;
  mqttPassword?: string;
  /** A file whose first line is the MQTT password (instead of mqttPassword). */
  mqttPasswordFile?: string;
  /** TLS (mqtts://): PEM files of the broker's CA, and a client certificate and key if the broker wants one. */
  mqttCa?: string;
  mqttCert?: string;
  mqttKey?: string;
  /** MQTT topic root (default `msc/v1`). */
  prefix?: string;
  /** Number of consoles (MQTT; serial is one console per line). Default 1 or the scenario's. */
  devices?: number;
  deviceIds?: string[];
  /** Device id prefix: `MSC` → MSC-0001, MSC-0002, … */
  idPrefix?: string;
  /** Telemetry rate at power-up, Hz (1–100, default 10). */
  rate?: number;
  seed?: number;
  /** Simulated ms per real ms (default 1). */
  speed?: number;
  /** A scenario file path or an already parsed scenario. */
  scenario?: string | Scenario;
  autoRun?: boolean | { sessionId?: string };
  /** Device clock at start, epoch ms (default now). */
  startEpochMs?: number;
  /** Keep every frame produced, with its fate, for Simulator.recorded(). */
  record?: boolean;
  /** MQTT samples per telemetry message (default by rate, see MqttLink). */
  batch?: number;
  phases?: Partial<PhaseDurations>;
  optionalSensors?: Partial<{ PH: boolean; DO: boolean }>;
  /** A clock the caller steps by hand (tests); the simulator then does not run it in real time. */
  clock?: SimClock;
  log?: Logger;
}

export interface Simulator {
  consoles: SimulatedConsole[];
  clock: SimClock;
  /** With `pty`: the path the gateway opens. */
  gatewayPath?: string;
  scenario?: Scenario;
  stats(): SimulatorStats;
  recorded(deviceId: string): RecordedFrame[];
  /** Injects a fault or event now (or at `at`): same shape as a scenario event. */
  apply(action: SimActionInput): void;
  /**
   * Stops consoles, links (MQTT: status offline, clean disconnect), the pty. Safe twice. Closing the pty
   * hangs up the gateway's end, and the kernel drops what the gateway has not read yet: to compare what
   * it received with stats(), stop the consoles (`consoles[i].stop()`), wait, then stop().
   */
  stop(): Promise<void>;
}

const DEVICE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Reads the password and TLS files; an unreadable one names its option. */
async function mqttAuth(opts: SimulatorOptions): Promise<{ password?: string; ca?: Buffer; cert?: Buffer; key?: Buffer }> {
  const read = async (what: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (err) {
      throw new Error(`${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  if (opts.mqttPassword !== undefined && opts.mqttPasswordFile !== undefined) throw new Error('give mqttPassword or mqttPasswordFile, not both');
  if ((opts.mqttCert === undefined) !== (opts.mqttKey === undefined)) throw new Error('mqtt cert and key go together');
  const out: { password?: string; ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  const password = opts.mqttPasswordFile !== undefined
    ? (await read('mqtt password file', opts.mqttPasswordFile)).toString('utf8').split(/\r?\n/)[0]
    : opts.mqttPassword;
  if (password !== undefined) {
    if (password === '') throw new Error('the MQTT password is empty');
    out.password = password;
  }
  if (opts.mqttCa !== undefined) out.ca = await read('mqtt ca', opts.mqttCa);
  if (opts.mqttCert !== undefined) out.cert = await read('mqtt cert', opts.mqttCert);
  if (opts.mqttKey !== undefined) out.key = await read('mqtt key', opts.mqttKey);
  return out;
}

function deviceIds(opts: SimulatorOptions, scenario: Scenario | undefined): string[] {
  const fromScenario = scenario?.devices;
  const ids = opts.deviceIds ?? (Array.isArray(fromScenario) ? fromScenario : undefined);
  if (ids) return ids;
  const n = opts.devices ?? (typeof fromScenario === 'number' ? fromScenario : 1);
  if (!Number.isInteger(n) || n < 1) throw new Error(`devices must be a positive integer, got ${n}`);
  const prefix = opts.idPrefix ?? 'MSC';
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(4, '0')}`);
}

export async function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  const log = opts.log ?? pino({ level: 'silent' });
  const scenario = typeof opts.scenario === 'string' ? await loadScenarioFile(opts.scenario) : opts.scenario;
  const ids = deviceIds(opts, scenario);
  for (const id of ids) if (!DEVICE_ID_RE.test(id)) throw new Error(`device id ${JSON.stringify(id)} must match ${DEVICE_ID_RE}`);
  if (new Set(ids).size !== ids.length) throw new Error('device ids must be unique');
  const rate = opts.rate ?? 10;
  if (!Number.isInteger(rate) || rate < 1 || rate > 100) throw new Error(`rate must be an integer 1-100 Hz, got ${rate}`);
  const speed = opts.speed ?? 1;
  if (!(speed > 0 && speed <= 10_000)) throw new Error(`speed must be in (0, 10000], got ${speed}`);
  if (opts.transport === 'serial' && ids.length !== 1) throw new Error('serial: one console per line (devices must be 1)');
  if (opts.transport === 'serial' && !opts.pty && !opts.serialPath) throw new Error('serial: give serialPath or pty');
  if (opts.transport === 'mqtt' && !opts.mqttUrl) throw new Error('mqtt: give mqttUrl');

  const seed = opts.seed ?? 1;
  const clock = opts.clock ?? new SimClock({ speed });
  const ledger = new FrameLedger(opts.record ?? false);
  const startEpochMs = opts.startEpochMs ?? Date.now();
  const autoRun = opts.autoRun ?? scenario?.autoRun;
  const consoles = ids.map((deviceId, i) => new SimulatedConsole({
    deviceId, clock, seed: deviceSeed(seed, i), rate, startEpochMs, autoRun, phases: opts.phases,
    optionalSensors: opts.optionalSensors,
  }));

  let pty: PtyPair | null = null;
  const links: SimLink[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of consoles) c.stop();
    for (const l of [...links].reverse()) await l.stop();
    await pty?.close();
  };
  try {
    if (opts.transport === 'serial') {
      if (opts.pty) pty = await createPtyPair();
      const path = pty?.devicePath ?? opts.serialPath ?? '';
      // Our own pty: the line counts as plugged in only while the gateway holds its end open.
      const peer = pty ? new PtyPeerWatch(pty.gatewayPath, [pty.socatPid]) : undefined;
      links.push(new SerialLink({
        path, console: consoles[0], ledger, rng: linkRng(seed, 0), log: log.child({ device: ids[0] }), peer,
      }));
    } else {
      const auth = await mqttAuth(opts);
      consoles.forEach((c, i) => links.push(new MqttLink({
        url: opts.mqttUrl ?? '', prefix: opts.prefix ?? 'msc/v1', console: c, ledger, rng: linkRng(seed, i),
        log: log.child({ device: c.deviceId }), batch: opts.batch, ...auth,
        username: opts.mqttUsername ?? (auth.password !== undefined ? c.deviceId : undefined),
      })));
    }
    // Links first, so the power-up HELLO goes out on an open line / a connected client.
    await Promise.all(links.map((l) => l.start()));
  } catch (err) {
    await cleanup();
    throw err;
  }

  const targets = consoles.map((c, i) => ({ console: c, link: links[i] }));
  const runner = scenario
    ? new ScenarioRunner(scenario, targets, (e, device) => log.info({ device, action: e.action, atMs: e.atMs }, 'scenario event'))
    : null;
  for (const c of consoles) c.start();
  try {
    runner?.start();
  } catch (err) {
    await cleanup();
    throw err;
  }
  if (!opts.clock) clock.start();
  log.info({ devices: ids, transport: opts.transport, rate, speed, seed, scenario: scenario?.name }, 'simulator started');

  let stopping: Promise<void> | null = null;
  return {
    consoles,
    clock,
    gatewayPath: pty?.gatewayPath,
    scenario,
    stats: () => ledger.stats(),
    recorded: (deviceId) => ledger.recorded(deviceId),
    apply(input) {
      const a = parseSimAction(input);
      for (const t of selectTargets(targets, a.device)) {
        const run = (): void => applyAction(t, a);
        if (a.atMs === undefined) {
          t.console.advanceTo(clock.now());
          run();
        } else {
          t.console.schedule(a.atMs, run);
        }
      }
    },
    stop() {
      stopping ??= (async () => {
        if (!opts.clock) clock.stop();
        runner?.stop();
        await cleanup();
        log.info({ stats: ledger.stats().framesSent }, 'simulator stopped');
      })();
      return stopping;
    },
  };
}

/** Console i's noise stream: the same seed gives every console its own, reproducible stream. */
function deviceSeed(seed: number, index: number): number {
  return deriveSeed(seed, index * 2);
}

function linkRng(seed: number, index: number) {
  return createRng(deriveSeed(seed, index * 2 + 1));
}

#!/usr/bin/env node
/**
 * msc-sim: simulated MSC-ALS consoles for demos and CI. Logs are JSON lines on stderr; stdout
 * carries only machine-readable lines: `{"gatewayPath": ...}` with --pty, `{"stats": ...}` at exit.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parseDuration } from './actions.js';
import { startSimulator } from './index.js';
import type { SimulatorOptions } from './index.js';

export const USAGE = `Usage: msc-sim (--serial PATH | --pty | --mqtt URL) [options]

Transport (exactly one):
  --serial PATH       device end of a serial line (e.g. one end of a socat pty pair)
  --pty               make a socat pty pair; prints {"gatewayPath": "..."} on stdout
  --mqtt URL          broker URL, e.g. mqtt://127.0.0.1:1883

Options:
  --prefix P          MQTT topic root (default msc/v1)
  --mqtt-username U   MQTT user (default: each console's device id, when a password is given)
  --mqtt-password-file F  file whose first line is the MQTT password; or set MSC_SIM_MQTT_PASSWORD
  --mqtt-ca FILE      CA certificate (PEM) of an mqtts:// broker
  --mqtt-cert FILE    client certificate (PEM), with --mqtt-key, if the broker wants one
  --mqtt-key FILE     its private key (PEM)
  --devices N         simulated consoles (MQTT; default 1)
  --id PREFIX         device id prefix (default MSC -> MSC-0001, MSC-0002, ...)
  --rate HZ           telemetry rate at power-up, 1-100 (default 10)
  --seed N            noise seed; the same seed replays the same run (default 1)
  --speed X           simulated time runs X times faster than real time (default 1)
  --scenario FILE     YAML or JSON scenario of timed events
  --auto-run          PRIME, then START a session, at power-up
  --session-id ID     session id for --auto-run
  --duration D        stop after D of simulated time (e.g. 90s, 10m, 2h)
  --batch N           MQTT samples per telemetry message (default by rate)
  --log-level L       pino level (default info)
  -h, --help          this text
`;

export type CliResult =
  | { kind: 'run'; options: SimulatorOptions; durationMs: number | null; logLevel: string }
  | { kind: 'help' }
  | { kind: 'error'; message: string };

function num(name: string, text: string | undefined, integer: boolean): number | string | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    return `--${name} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(text)}`;
  }
  return n;
}

/** Parses argv (without node and script); never exits, so it can be tested. */
export function parseCli(argv: string[]): CliResult {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        serial: { type: 'string' }, pty: { type: 'boolean' }, mqtt: { type: 'string' }, prefix: { type: 'string' },
        devices: { type: 'string' }, id: { type: 'string' }, rate: { type: 'string' }, seed: { type: 'string' },
        speed: { type: 'string' }, scenario: { type: 'string' }, 'auto-run': { type: 'boolean' },
        'session-id': { type: 'string' }, duration: { type: 'string' }, batch: { type: 'string' },
        'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' },
        'mqtt-username': { type: 'string' }, 'mqtt-password-file': { type: 'string' }, 'mqtt-ca': { type: 'string' },
        'mqtt-cert': { type: 'string' }, 'mqtt-key': { type: 'string' },
      },
    }));
  } catch (err) {
    return { kind: 'error', message: (err as Error).message };
  }
  if (values.help) return { kind: 'help' };
  const transports = [values.serial !== undefined, values.pty === true, values.mqtt !== undefined].filter(Boolean).length;
  if (transports !== 1) return { kind: 'error', message: 'give exactly one of --serial PATH, --pty, --mqtt URL' };

  const devices = num('devices', values.devices, true);
  const rate = num('rate', values.rate, true);
  const seed = num('seed', values.seed, true);
  const speed = num('speed', values.speed, false);
  const batch = num('batch', values.batch, true);
  for (const v of [devices, rate, seed, speed, batch]) if (typeof v === 'string') return { kind: 'error', message: v };
  if (typeof rate === 'number' && (rate < 1 || rate > 100)) return { kind: 'error', message: '--rate must be 1-100 Hz' };
  if (typeof devices === 'number' && devices < 1) return { kind: 'error', message: '--devices must be at least 1' };
  if (typeof speed === 'number' && speed <= 0) return { kind: 'error', message: '--speed must be above 0' };
  if (typeof batch === 'number' && (batch < 1 || batch > 100)) return { kind: 'error', message: '--batch must be 1-100' };
  const mqttOnly = ['mqtt-username', 'mqtt-password-file', 'mqtt-ca', 'mqtt-cert', 'mqtt-key'] as const;
  for (const name of mqttOnly) {
    if (values[name] !== undefined && values.mqtt === undefined) return { kind: 'error', message: `--${name} needs --mqtt` };
  }
  if ((values['mqtt-cert'] === undefined) !== (values['mqtt-key'] === undefined)) {
    return { kind: 'error', message: '--mqtt-cert and --mqtt-key go together' };
  }
  if (values['session-id'] !== undefined && !values['auto-run']) {
    return { kind: 'error', message: '--session-id needs --auto-run' };
  }
  let durationMs: number | null = null;
  if (values.duration !== undefined) {
    durationMs = parseDuration(values.duration);
    if (durationMs === null) return { kind: 'error', message: `--duration ${JSON.stringify(values.duration)} is not a duration (e.g. 90s, 10m)` };
  }

  const options: SimulatorOptions = {
    transport: values.mqtt !== undefined ? 'mqtt' : 'serial',
    serialPath: values.serial,
    pty: values.pty,
    mqttUrl: values.mqtt,
    mqttUsername: values['mqtt-username'],
    mqttPasswordFile: values['mqtt-password-file'],
    mqttCa: values['mqtt-ca'],
    mqttCert: values['mqtt-cert'],
    mqttKey: values['mqtt-key'],
    prefix: values.prefix,
    devices: devices as number | undefined,
    idPrefix: values.id,
    rate: rate as number | undefined,
    seed: seed as number | undefined,
    speed: speed as number | undefined,
    scenario: values.scenario,
    batch: batch as number | undefined,
    autoRun: values['auto-run'] ? (values['session-id'] ? { sessionId: values['session-id'] } : true) : undefined,
  };
  return { kind: 'run', options, durationMs, logLevel: values['log-level'] ?? 'info' };
}

async function main(): Promise<void> {
  const parsed = parseCli(process.argv.slice(2));
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (parsed.kind === 'error') {
    process.stderr.write(`msc-sim: ${parsed.message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const log = pino({ level: parsed.logLevel, base: { app: 'msc-sim' } }, pino.destination({ fd: 2, sync: true }));
  // The password comes from the environment or a file, never argv (which `ps` shows to every user).
  const envPassword = process.env.MSC_SIM_MQTT_PASSWORD;
  if (envPassword && parsed.options.mqttPasswordFile === undefined && parsed.options.transport === 'mqtt') {
    parsed.options.mqttPassword = envPassword;
  }
  let sim;
  try {
    sim = await startSimulator({ ...parsed.options, log });
  } catch (err) {
    log.error({ err: (err as Error).message }, 'simulator failed to start');
    process.exitCode = 1;
    return;
  }
  if (sim.gatewayPath) process.stdout.write(`${JSON.stringify({ gatewayPath: sim.gatewayPath })}\n`);

  const running = sim;
  let finishing = false;
  const finish = async (reason: string): Promise<void> => {
    if (finishing) return;
    finishing = true;
    log.info({ reason }, 'stopping');
    await running.stop();
    process.stdout.write(`${JSON.stringify({ stats: running.stats() })}\n`);
    process.exit(0);
  };
  process.once('SIGINT', () => void finish('SIGINT'));
  process.once('SIGTERM', () => void finish('SIGTERM'));
  if (parsed.durationMs !== null) {
    const end = parsed.durationMs;
    sim.clock.onTick((now) => {
      if (now >= end) void finish('duration reached');
    });
  }
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
})();
if (invokedDirectly) void main();

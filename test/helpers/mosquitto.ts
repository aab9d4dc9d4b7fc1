/**
 * A real mosquitto for integration tests: its own free port, a generated config in a temp dir,
 * no persistence. restart() brings it back on the same port (clients reconnect to the same URL).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, portAccepts } from './net.js';

export interface MosquittoBroker {
  url: string;
  port: number;
  /** Kills the broker and removes its temp dir. Safe twice. */
  stop(): Promise<void>;
  /** Stops and starts the broker on the same port (retained messages are lost: persistence is off). */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
const KILL_GRACE_MS = 3_000;

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
  await exited(child);
  clearTimeout(timer);
}

export interface MosquittoOptions {
  binary?: string;
  /** Extra mosquitto.conf lines (e.g. the in-flight window and queue deploy/mosquitto/mosquitto.conf sets). */
  config?: string[];
  /**
   * The whole mosquitto.conf, given the port to listen on (see deployedConfig), instead of the default anonymous
   * plain listener; `config` lines still follow it.
   */
  base?: (port: number) => string[];
  /** The scheme of `url`: mqtts when `base` makes a TLS listener. */
  scheme?: 'mqtt' | 'mqtts';
}

const DEPLOY_CONF = resolve(import.meta.dirname, '../../deploy/mosquitto/mosquitto.conf');

/**
 * deploy/mosquitto/mosquitto.conf as users get it, made runnable here: its listener on `port` on loopback, its
 * /mosquitto/config/* and /mosquitto/certs/* files taken from `files` (password file, ACL, certificates), no
 * persistence. Every other line (anonymous access, auth, ACL, client ids, TLS settings) is kept as shipped.
 * Mosquitto reads its password file and key after dropping to `user` when started as root: it stays this user.
 */
export function deployedConfig(port: number, files: { configDir: string; certDir: string }): string[] {
  const lines = readFileSync(DEPLOY_CONF, 'utf8').split('\n')
    .filter((l) => !/^(persistence|persistence_location|autosave_interval|log_dest)\b/.test(l))
    .map((l) => l
      .replace(/^listener (\d+)$/, `listener ${port} 127.0.0.1`)
      .replace(/ \/mosquitto\/config\//, ` ${files.configDir}/`)
      .replace(/ \/mosquitto\/certs\//, ` ${files.certDir}/`));
  if (lines.filter((l) => l.startsWith('listener ')).length !== 1) throw new Error(`${DEPLOY_CONF}: expected one listener`);
  return [...lines, 'persistence false', 'log_dest stderr', `user ${userInfo().username}`];
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'msc-mosquitto-'));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  const base = opts.base ? opts.base(port) : [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
  ];
  await writeFile(conf, [...base, ...(opts.config ?? []), ''].join('\n'));

  let child: ChildProcess | null = null;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const proc = spawn(opts.binary ?? 'mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString();
    });
    let spawnError: Error | null = null;
    proc.once('error', (err) => {
      spawnError = err;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (spawnError !== null) throw new Error(`mosquitto failed to start: ${(spawnError as Error).message}`);
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`mosquitto exited (${proc.exitCode ?? proc.signalCode}): ${stderr.trim()}`);
      }
      if (await portAccepts(port)) return;
      if (Date.now() > deadline) {
        await kill(proc);
        throw new Error(`mosquitto did not accept connections on ${port} within ${READY_TIMEOUT_MS} ms: ${stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child) await kill(child);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await launch();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    url: `${opts.scheme ?? 'mqtt'}://127.0.0.1:${port}`,
    port,
    stop,
    async restart() {
      if (stopped) throw new Error('mosquitto helper: restart() after stop()');
      if (child) await kill(child);
      await launch();
    },
  };
}

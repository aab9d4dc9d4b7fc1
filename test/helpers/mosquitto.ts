/**
 * A real mosquitto for integration tests: its own free port, a generated config in a temp dir,
 * no persistence. restart() brings it back on the same port (clients reconnect to the same URL).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** `config`: extra mosquitto.conf lines (e.g. the in-flight window and queue deploy/mosquitto/mosquitto.conf sets). */
export async function startMosquitto(opts: { binary?: string; config?: string[] } = {}): Promise<MosquittoBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'msc-mosquitto-'));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(conf, [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    ...(opts.config ?? []),
    '',
  ].join('\n'));

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
    url: `mqtt://127.0.0.1:${port}`,
    port,
    stop,
    async restart() {
      if (stopped) throw new Error('mosquitto helper: restart() after stop()');
      if (child) await kill(child);
      await launch();
    },
  };
}

/**
 * Runs the built gateway (`dist/src/cli/index.js`, built by `npm test` before vitest) as a real child process,
 * for tests that need signals (SIGTERM, SIGKILL) or exit codes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { waitFor } from './waitFor.js';

export const CLI = resolve(import.meta.dirname, '../../dist/src/cli/index.js');

export interface GatewayProcess {
  proc: ChildProcess;
  url: string;
  /** JSON log lines parsed so far (stdout). */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`msc-gateway ${args.join(' ')} did not exit in ${timeoutMs} ms`)); }, timeoutMs);
    p.on('exit', (code) => { clearTimeout(timer); resolvePromise({ code, stdout, stderr }); });
  });
}

/** Starts `msc-gateway` on a free HTTP port (`--http 127.0.0.1:0` is not observable, so the caller passes a port). */
export async function startGatewayProcess(args: string[], port: number, env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const proc = spawn(process.execPath, [CLI, '--http', `127.0.0.1:${port}`, ...args], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let buf = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { logs.push(JSON.parse(line)); } catch { logs.push({ raw: line }); }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(async () => {
    if (gone) throw new Error(`gateway exited early: ${err}${JSON.stringify(logs.slice(-5))}`);
    const r = await fetch(`${url}/healthz`).catch(() => null);
    return r?.status === 200;
  }, { timeoutMs: 20_000, message: 'gateway /healthz' }).catch((e) => { proc.kill('SIGKILL'); throw e; });
  return {
    proc, url, logs, exited, stderr: () => err,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (!gone) proc.kill(signal);
      const { code } = await exited;
      return code;
    },
  };
}

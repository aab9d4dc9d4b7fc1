/**
 * A real InfluxDB 1.x (`influxd` from Debian's `influxdb` package) for integration tests and the
 * storage benchmark: generated config, free ports, a temporary directory, no auth.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { waitFor } from './waitFor.js';

export interface InfluxdHandle {
  /** `http://127.0.0.1:PORT`, stable across stop()/start(). */
  url: string;
  port: number;
  /** The temporary directory holding config, meta, data and wal. */
  dir: string;
  /** SIGTERM (SIGKILL after 10 s); data stays for start(). Safe twice. */
  stop(): Promise<void>;
  /** Starts again after stop(), same port and data. */
  start(): Promise<void>;
  /** InfluxQL via GET /query (POST for statements that change things); the parsed JSON body. */
  query(q: string, db: string): Promise<any>;
  /** stop() and remove the temporary directory. */
  dispose(): Promise<void>;
}

const INFLUXD = process.env.INFLUXD ?? 'influxd';

function config(dir: string, httpPort: number, rpcPort: number): string {
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, 'meta')}"
  logging-enabled = false

[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  wal-fsync-delay = "0s"
  query-log-enabled = false

[retention]
  enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
`;
}

export async function startInfluxd(): Promise<InfluxdHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'msc-influxd-'));
  const configPath = join(dir, 'influxdb.conf');
  let proc: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';
  let httpPort = 0;
  const killOnExit = () => proc?.kill('SIGKILL');
  process.on('exit', killOnExit);

  async function launch(): Promise<void> {
    stderr = '';
    const child = spawn(INFLUXD, ['run', '-config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc = child;
    let gone = false;
    exited = new Promise((resolve) => child.once('exit', () => ((gone = true), resolve())));
    child.once('error', (err) => (stderr += String(err)));
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
    try {
      await waitFor(async () => {
        if (gone) throw new Error(`influxd exited: ${stderr}`);
        const res = await fetch(`http://127.0.0.1:${httpPort}/ping`).catch(() => null);
        return res?.status === 204;
      }, { timeoutMs: 30_000, intervalMs: 50, message: `influxd /ping on ${httpPort}` });
    } catch (err) {
      child.kill('SIGKILL');
      await exited;
      proc = null;
      throw err;
    }
  }

  // A free port can be taken between freePort() and influxd's bind: try fresh ports a few times.
  for (let attempt = 1; ; attempt++) {
    httpPort = await freePort();
    writeFileSync(configPath, config(dir, httpPort, await freePort()));
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        process.off('exit', killOnExit);
        throw err;
      }
    }
  }

  const url = `http://127.0.0.1:${httpPort}`;
  const handle: InfluxdHandle = {
    url,
    port: httpPort,
    dir,
    async stop() {
      const p = proc;
      if (!p) return;
      proc = null;
      p.kill('SIGTERM');
      const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
    async start() {
      if (proc) return;
      await launch();
    },
    async query(q: string, db: string) {
      const params = new URLSearchParams({ q, db, epoch: 'ms' });
      const mutating = /^\s*(CREATE|DROP|ALTER|DELETE|GRANT|REVOKE|KILL)\b/i.test(q);
      const res = await fetch(`${url}/query?${params}`, { method: mutating ? 'POST' : 'GET' });
      const body = await res.json();
      if (!res.ok) throw new Error(`influxd /query ${res.status}: ${JSON.stringify(body)}`);
      return body;
    },
    async dispose() {
      await handle.stop();
      process.off('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/** An in-process gateway on a free port with a temporary data directory, for integration tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type ConfigInput } from '../../src/config.js';
import { Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';

export interface TestGateway {
  gateway: Gateway;
  url: string;
  dataDir: string;
  get<T = any>(path: string, token?: string): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

export async function startTestGateway(config: ConfigInput, opts: { dataDir?: string; logger?: ReturnType<typeof silentLogger> } = {}): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'msc-gw-'));
  const gateway = new Gateway(parseConfig({ http: { host: '127.0.0.1', port: 0 }, dataDir, ...config }), {
    logger: opts.logger ?? silentLogger(),
  });
  await gateway.start();
  const url = gateway.httpUrl;
  return {
    gateway, url, dataDir,
    async get(path, token) {
      const r = await fetch(url + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      const text = await r.text();
      let body: unknown = text;
      try { body = JSON.parse(text); } catch { /* text body, e.g. /metrics */ }
      return { status: r.status, body: body as never };
    },
    async stop() {
      await gateway.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

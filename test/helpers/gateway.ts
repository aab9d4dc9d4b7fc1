/** An in-process gateway on a free port with a temporary data directory, for integration tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type ConfigInput } from '../../src/config.js';
import { Gateway } from '../../src/gateway.js';
import { silentLogger } from '../../src/log.js';

export type Role = 'viewer' | 'operator' | 'engineer' | 'admin';

export interface TestGateway {
  gateway: Gateway;
  url: string;
  dataDir: string;
  /** A token per role, made through the gateway's token store (as `msc-gateway tokens add` does). */
  tokens: Record<Role, string>;
  /** GET with the admin token unless another is given ('' sends none). */
  get<T = any>(path: string, token?: string): Promise<{ status: number; body: T }>;
  /** POST JSON with the operator token unless another is given. */
  post<T = any>(path: string, body: unknown, token?: string): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  dataDir?: string;
  logger?: ReturnType<typeof silentLogger>;
}

export async function startTestGateway(config: ConfigInput, opts: TestGatewayOptions = {}): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'msc-gw-'));
  const gateway = new Gateway(parseConfig({ http: { host: '127.0.0.1', port: 0 }, dataDir, ...config }), {
    logger: opts.logger ?? silentLogger(),
  });
  await gateway.start();
  const url = gateway.httpUrl;
  const tokens = {} as Record<Role, string>;
  for (const role of ['viewer', 'operator', 'engineer', 'admin'] as const) {
    const made = gateway.tokens.add(`test-${role}`, role, { user: 'test-setup', role: 'admin' });
    if (!made.ok) throw new Error(`token for ${role}: ${made.reason}`);
    tokens[role] = made.value.token;
  }
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    let parsed: unknown = text;
    try { parsed = JSON.parse(text); } catch { /* text body, e.g. /metrics */ }
    return { status: r.status, body: parsed as never };
  };
  return {
    gateway, url, dataDir, tokens,
    get: (path, token) => call('GET', path, token ?? tokens.admin),
    post: (path, body, token) => call('POST', path, token ?? tokens.operator, body),
    async stop() {
      await gateway.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

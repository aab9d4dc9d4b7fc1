/**
 * `--influx URL` (`http://[user:pass@]host:8086/DB`, optional token) to an `influx` client.
 * One code path for InfluxDB 1.x, 2.x (v1 compatibility API) and 3 Core: line protocol to /write,
 * InfluxQL to /query.
 */
import http from 'node:http';
import https from 'node:https';
import { InfluxDB, type IPoolOptions, type ISingleHostConfig, type ISchemaOptions } from 'influx';

type IBackoffStrategy = NonNullable<IPoolOptions['backoff']>;

export interface InfluxTarget {
  /** `http(s)://[user:pass@]host[:port][/prefix]/DB`; the last path segment is the database. */
  url: string;
  /** API token for 2.x / 3 Core, sent as `Authorization: Token …` instead of Basic auth. */
  token?: string;
  /** Per-request timeout, ms. */
  requestTimeoutMs?: number;
}

export interface ResolvedTarget {
  database: string;
  /** POST target for line protocol: `<base>/write?db=…&precision=ns` (influxLines.ts: sub-millisecond identity). */
  writeUrl: string;
  /** Authorization header for our own /write requests (Basic or Token), if any. */
  authorization: string | null;
  /** The URL without credentials, for logs and status. */
  redacted: string;
  options: ISingleHostConfig;
}

/**
 * The client disables a host for a while after an error and then fails fast with "No host
 * available"; our forwarder owns retry and backoff, so the pool never benches the host.
 */
const neverBench: IBackoffStrategy = {
  getDelay: () => 0,
  next() {
    return neverBench;
  },
  reset() {
    return neverBench;
  },
};

export function resolveInfluxTarget(target: InfluxTarget, schema: ISchemaOptions[] = []): ResolvedTarget {
  let u: URL;
  try {
    u = new URL(target.url);
  } catch {
    throw new Error(`influx url is not a URL: ${JSON.stringify(redact(target.url))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`influx url must be http(s): ${redact(target.url)}`);
  const segments = u.pathname.split('/').filter((s) => s.length > 0).map(decodeURIComponent);
  const database = segments.pop();
  if (!database) throw new Error(`influx url names no database (http://host:8086/DB): ${redact(target.url)}`);
  const options: ISingleHostConfig = {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 8086,
    protocol: u.protocol === 'https:' ? 'https' : 'http',
    path: segments.length > 0 ? `/${segments.map(encodeURIComponent).join('/')}` : '',
    database,
    schema,
    pool: { maxRetries: 0, requestTimeout: target.requestTimeoutMs ?? 10_000, backoff: neverBench },
  };
  let authorization: string | null = null;
  if (target.token) {
    authorization = `Token ${target.token}`;
    // The client adds Basic auth whenever `username` is a string (it defaults to root:root, which
    // would override our header); null is the documented-by-code way to send no Basic auth.
    options.username = null as unknown as string;
    options.options = { headers: { Authorization: `Token ${target.token}` } };
  } else if (u.username) {
    options.username = decodeURIComponent(u.username);
    options.password = decodeURIComponent(u.password);
    authorization = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
  }
  const base = `${u.protocol}//${u.hostname}:${options.port}${options.path}`;
  const writeUrl = `${base}/write?${new URLSearchParams({ db: database, precision: 'ns' })}`;
  return { database, writeUrl, authorization, redacted: redact(target.url), options };
}

export function createInfluxClient(target: InfluxTarget, schema: ISchemaOptions[] = []): ResolvedTarget & {
  client: InfluxDB;
} {
  const resolved = resolveInfluxTarget(target, schema);
  return { ...resolved, client: new InfluxDB(resolved.options) };
}

/** A /write that did not answer 2xx. */
export class InfluxWriteError extends Error {
  constructor(readonly status: number, body: string) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`);
    this.name = 'InfluxWriteError';
  }
}

/** Keep-alive: a drain is a stream of POSTs to one server. */
const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/**
 * POST line protocol; resolves on 2xx, rejects with the status and InfluxDB's error text otherwise.
 * node:http rather than fetch: fetch copies a 1 MB body once more through web streams (bench/storage.ts).
 */
export function postLines(target: ResolvedTarget, body: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const secure = target.writeUrl.startsWith('https:');
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body),
    };
    if (target.authorization) headers.authorization = target.authorization;
    const req = (secure ? https : http).request(target.writeUrl, {
      method: 'POST', headers, agent: secure ? agents.https : agents.http, timeout: timeoutMs,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve();
        else reject(new InfluxWriteError(status, text));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from InfluxDB within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export function redact(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@');
}

/** HTTP status of a failed request (ours or the `influx` client's), when the server answered. */
export function httpStatus(err: unknown): number | null {
  if (err instanceof InfluxWriteError) return err.status;
  const res = (err as { res?: { statusCode?: number } } | null)?.res;
  return typeof res?.statusCode === 'number' ? res.statusCode : null;
}

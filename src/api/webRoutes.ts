/**
 * The browser screens: the built assets under `dist/web` (scripts/build-web.mjs), and the few reads
 * the screens need that no other route gives: who am I, a console's sessions, its alarm history, and the CSV
 * export of a range. Static files carry no data and are open; every data route is in src/auth/routeRoles.ts.
 * Pages are served with a strict CSP (`default-src 'self'`, no inline script): nothing comes from elsewhere.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { LimitParam, TimeParam } from '../control/requestSchemas.js';
import { sendBadRequest, sendError, zodIssues } from '../errors.js';
import type { ReplayService } from '../live/replay.js';
import type { ChannelValues } from '../protocol/types.js';
import type { Journal } from '../storage/journal.js';
import { actorOf } from './authPlugin.js';
import { csvField, csvRecord } from '../util/csv.js';

export interface WebRoutesOptions {
  replay: ReplayService;
  journal: Journal | null;
  /** Whether a console id was ever seen (live or journaled): its routes answer 404 for any other id. */
  deviceKnown?: (id: string) => boolean;
  /** Directory of the built assets; default `<package root>/dist/web`. */
  webRoot?: string;
}

export const CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'", "object-src 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.woff2': 'font/woff2',
};
/** Build output names carry a content hash (`app-3FJ2K1QZ.js`): cache them for ever. */
const HASHED = /-[A-Z0-9]{8}\.[a-z0-9]+$/;

interface Asset { body: Buffer; type: string; immutable: boolean }

/** The package root: the nearest directory above this file with a package.json (src/ under vitest, dist/src/ built). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

function loadAssets(root: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(root)) return assets;
  const walk = (dir: string, prefix: string) => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full, `${prefix}${name}/`);
      else assets.set(prefix + name, { body: readFileSync(full), type: TYPES[extname(name)] ?? 'application/octet-stream', immutable: HASHED.test(name) });
    }
  };
  walk(root, '');
  return assets;
}

function secure(reply: FastifyReply): FastifyReply {
  return reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY');
}

const RangeQuery = z.object({
  from: TimeParam,
  to: TimeParam,
  channels: z.string().max(1_000).optional(),
}).strict();
const AlarmHistoryQuery = z.object({
  session: z.string().min(1).max(64).optional(),
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  limit: LimitParam(10_000).optional(),
}).strict();

export async function webRoutes(app: FastifyInstance, opts: WebRoutesOptions): Promise<void> {
  const assets = loadAssets(opts.webRoot ?? join(packageRoot(), 'dist', 'web'));
  const { replay, journal } = opts;
  const unknownDevice = (id: string, reply: FastifyReply): FastifyReply | null =>
    opts.deviceKnown && !opts.deviceKnown(id) ? sendError(reply, 'not_found', `no device ${id}: it has never connected to this gateway`) : null;

  const sendAsset = (reply: FastifyReply, path: string) => {
    const a = assets.get(path);
    if (!a) {
      return secure(reply).code(path === 'index.html' ? 503 : 404).type('text/plain; charset=utf-8')
        .send(path === 'index.html' ? 'The screens are not built: run `npm run build`.' : 'not found');
    }
    return secure(reply).type(a.type).header('cache-control', a.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(a.body);
  };

  app.get('/', async (_req, reply) => sendAsset(reply, 'index.html'));
  app.get('/favicon.ico', async (_req, reply) => sendAsset(reply, 'assets/favicon.svg'));
  app.get<{ Params: { '*': string } }>('/assets/*', async (req, reply) => {
    const rel = req.params['*'];
    if (rel.includes('..')) return sendError(reply, 'not_found', 'no such asset');
    return sendAsset(reply, `assets/${rel}`);
  });

  app.get('/api/me', async (req) => {
    const who = actorOf(req);
    return { user: who.user, role: who.role };
  });

  app.get<{ Params: { id: string } }>('/api/devices/:id/sessions', async (req, reply) => unknownDevice(req.params.id, reply) ?? {
    device: req.params.id, sessions: replay.sessions(req.params.id), source: replay.source,
  });

  /** Alarm transitions of a console (newest first), optionally of one session: the screens' alarm history. */
  app.get<{ Params: { id: string } }>('/api/devices/:id/alarm-history', async (req, reply) => {
    const q = AlarmHistoryQuery.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    if (unknownDevice(req.params.id, reply)) return reply;
    if (!journal) return sendError(reply, 'storage_unavailable', 'no journal');
    const from = q.data.from ?? 0;
    const to = q.data.to ?? 8.64e15;
    let list = journal.alarms(req.params.id, { from, to }, 100_000);
    if (q.data.session) list = list.filter((t) => t.alarm.sessionId === q.data.session);
    list = list.reverse().slice(0, q.data.limit ?? 500);
    return { device: req.params.id, transitions: list };
  });

  /**
   * CSV of raw samples in [from, to), streamed page by page. An empty field is a channel the frame did not
   * carry; `!` is a sensor fault (ICD §1 notation), never an empty or zero value.
   */
  app.get<{ Params: { id: string } }>('/api/devices/:id/telemetry.csv', async (req, reply) => {
    const q = RangeQuery.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    const { from, to } = q.data;
    if (from >= to) return sendBadRequest(reply, [{ path: 'query.to', message: 'must be after from' }]);
    if (unknownDevice(req.params.id, reply)) return reply;
    if (!replay.source) return sendError(reply, 'storage_unavailable', 'no journal or InfluxDB');
    const named = q.data.channels?.split(',').map((c) => c.trim()).filter((c) => /^[A-Za-z0-9_]{1,32}$/.test(c));
    const channels = named && named.length > 0 ? named : (journal?.knownChannels(req.params.id) ?? []);
    const device = req.params.id;
    async function* rows(): AsyncGenerator<string> {
      yield csvRecord(['time', 't_ms', 'seq', ...channels]);
      for await (const page of replay.samples(device, from, to)) {
        let out = '';
        for (const s of page) out += csvRow(s.t, s.seq, s.v, channels);
        yield out;
      }
    }
    const name = `${device}-${new Date(from).toISOString().replace(/[:.]/g, '')}.csv`.replace(/[^A-Za-z0-9_.-]/g, '_');
    return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`)
      .header('cache-control', 'no-store').send(Readable.from(rows()));
  });
}

function csvRow(t: number, seq: number | null, v: ChannelValues, channels: string[]): string {
  let line = `${new Date(t).toISOString()},${t},${seq ?? ''}`;
  for (const c of channels) {
    const x = v[c];
    // Values are numbers (ICD §1); anything else from a store goes through the shared cell rule.
    line += x === undefined ? ',' : x === null ? ',!' : typeof x === 'number' ? `,${x}` : `,${csvField(x)}`;
  }
  return line + '\r\n';
}

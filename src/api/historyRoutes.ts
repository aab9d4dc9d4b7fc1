/**
 * `GET /api/devices/:id/telemetry?from=&to=&channels=QB,PV&every=10s&limit=` (viewer):
 * time-ordered samples from InfluxDB when configured, from the journal otherwise. `every` returns the
 * mean per bucket, so a 24 h chart is a few thousand points, not two million.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { LimitParam, TimeParam } from '../control/requestSchemas.js';
import { sendBadRequest, sendError, zodIssues } from '../errors.js';
import type { HistoryService } from '../storage/history.js';
import { StorageUnavailableError } from '../storage/types.js';

export interface HistoryRoutesOptions {
  history: HistoryService;
  /** Whether a console id was ever seen (live or journaled): 404 for any other id, not an empty history. */
  deviceKnown?: (id: string) => boolean;
  now?: () => number;
}

const DEFAULT_SPAN_MS = 15 * 60_000;
/** More buckets than this is no longer a chart: ask for a wider `every`. */
export const MAX_BUCKETS = 100_000;
export const MAX_SAMPLES = 500_000;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;

const EveryParam = z.string().regex(/^[1-9]\d{0,6}(ms|s|m|h)$/, 'expected a duration like 500ms, 10s, 1m or 1h')
  .transform((s) => {
    const [, n, unit] = /^(\d+)(ms|s|m|h)$/.exec(s)!;
    return Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  });

/** `QB,PV`: channel keys as the ICD writes them (unknown keys of newer firmware included). */
const ChannelsParam = z.string().max(1_000)
  .transform((s) => [...new Set(s.split(',').map((c) => c.trim()).filter((c) => c.length > 0))])
  .pipe(z.array(z.string().regex(/^[A-Za-z0-9_]{1,32}$/, 'expected channel keys like QB,PV')).min(1).max(64));

const QuerySchema = z.object({
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  channels: ChannelsParam.optional(),
  every: EveryParam.optional(),
  limit: LimitParam(MAX_SAMPLES).optional(),
}).strict();

export async function historyRoutes(app: FastifyInstance, opts: HistoryRoutesOptions): Promise<void> {
  const now = opts.now ?? Date.now;
  app.get<{ Params: { id: string } }>('/api/devices/:id/telemetry', async (req, reply) => {
    const parsed = QuerySchema.safeParse(req.query);
    if (!parsed.success) return sendBadRequest(reply, zodIssues(parsed.error, ['query']));
    const q = parsed.data;
    const to = q.to ?? (q.from !== undefined ? q.from + DEFAULT_SPAN_MS : now());
    const from = q.from ?? to - DEFAULT_SPAN_MS;
    const issue = (path: string, message: string) => sendBadRequest(reply, [{ path, message }]);
    if (from >= to) return issue('query.to', 'must be after from');
    if (q.every !== undefined && (to - from) / q.every > MAX_BUCKETS) {
      return issue('query.every', `too fine for the range: at most ${MAX_BUCKETS} buckets`);
    }
    if (opts.deviceKnown && !opts.deviceKnown(req.params.id)) {
      return sendError(reply, 'not_found', `no device ${req.params.id}: it has never connected to this gateway`);
    }
    try {
      const r = await opts.history.telemetry(req.params.id, { from, to, channels: q.channels, everyMs: q.every, limit: q.limit });
      return {
        device: req.params.id, from, to, every: (req.query as { every?: string }).every ?? null, everyMs: q.every ?? null,
        channels: r.channels, samples: r.samples, truncated: r.truncated, source: r.source,
      };
    } catch (err) {
      if (err instanceof StorageUnavailableError) {
        return sendError(reply, 'storage_unavailable', err.message);
      }
      throw err;
    }
  });
}

/**
 * Trial session routes (roles in src/auth/routeRoles.ts):
 * `GET /api/sessions?device=&from=&to=&limit=` records; `GET /api/sessions/:id[/summary]?device=` summary;
 * `GET /api/sessions/:id/export?format=csv|json&every=10s&device=` (engineer) with `X-Content-SHA256`;
 * `PUT /api/sessions/:id/participant` `{code, reason, device?}` (operator, audited).
 */
import { createReadStream } from 'node:fs';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { z } from 'zod';
import { LimitParam, TimeParam } from '../control/requestSchemas.js';
import { sendBadRequest, sendError, zodIssues } from '../errors.js';
import type { SessionService } from '../sessions/service.js';
import { PARTICIPANT_CODE_RE } from '../sessions/types.js';
import { actorOf } from './authPlugin.js';
import { DeviceParam, lookupSession } from './sessionLookup.js';

export interface SessionRoutesOptions {
  sessions: SessionService;
}

const Device = DeviceParam;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const EveryParam = z.string().regex(/^[1-9]\d{0,6}(ms|s|m|h)$/, 'expected a duration like 500ms, 10s, 1m or 1h')
  .transform((s) => {
    const [, n, unit] = /^(\d+)(ms|s|m|h)$/.exec(s)!;
    return Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  });

const ListQuery = z.object({
  device: Device.optional(), from: TimeParam.optional(), to: TimeParam.optional(), limit: LimitParam(1000).optional(),
}).strict();
const OneQuery = z.object({ device: Device.optional() }).strict();
const ExportQuery = z.object({
  device: Device.optional(), format: z.enum(['csv', 'json']).default('json'), every: EveryParam.optional(),
}).strict();
const ParticipantBody = z.object({
  code: z.string().regex(PARTICIPANT_CODE_RE, '1-32 characters of A-Z a-z 0-9 and -: a pseudonymous study code, never a name'),
  reason: z.string().trim().min(1).max(500),
  device: Device.optional(),
}).strict();

type Params = { Params: { id: string } };

export const MAX_EXPORT_BUCKETS = 1_000_000;

export const sessionRoutes: FastifyPluginAsync<SessionRoutesOptions> = async (app, opts) => {
  const sessions = opts.sessions;

  const lookup = (id: string, device: string | undefined, reply: FastifyReply) => lookupSession(sessions, id, device, reply);

  app.get('/api/sessions', async (req, reply) => {
    const q = ListQuery.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    return { sessions: sessions.list(q.data) };
  });

  const summary = async (req: { params: { id: string }; query: unknown }, reply: FastifyReply) => {
    const q = OneQuery.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    const record = lookup(req.params.id, q.data.device, reply);
    if (!record) return reply;
    return { record, summary: await sessions.summary(record) };
  };
  app.get<Params>('/api/sessions/:id', summary);
  app.get<Params>('/api/sessions/:id/summary', summary);

  app.get<Params>('/api/sessions/:id/export', async (req, reply) => {
    const q = ExportQuery.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    const record = lookup(req.params.id, q.data.device, reply);
    if (!record) return reply;
    // Buckets are held in memory while written: bound them (raw samples are streamed page by page instead).
    const spanMs = (record.endedAt ?? Date.now()) - record.startedAt;
    if (q.data.every !== undefined && spanMs / q.data.every > MAX_EXPORT_BUCKETS) {
      return sendBadRequest(reply, [{ path: 'query.every', message: `too fine for this session: at most ${MAX_EXPORT_BUCKETS} buckets` }]);
    }
    const file = await sessions.export(record, { format: q.data.format, everyMs: q.data.every });
    const body = createReadStream(file.path);
    body.once('close', () => file.remove());
    return reply
      .header('content-type', file.contentType)
      .header('content-length', String(file.bytes))
      .header('content-disposition', `attachment; filename="${file.fileName}"`)
      .header('x-content-sha256', file.sha256)
      .send(body);
  });

  app.put<Params>('/api/sessions/:id/participant', { bodyLimit: 4 * 1024 }, async (req, reply) => {
    const body = ParticipantBody.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, zodIssues(body.error));
    const record = lookup(req.params.id, body.data.device, reply);
    if (!record) return reply;
    const result = sessions.setParticipant(record, body.data.code, body.data.reason, actorOf(req));
    if (!result.ok) {
      if (result.status === 400) return sendBadRequest(reply, [{ path: 'code', message: result.message.replace(/^code: /, '') }]);
      return sendError(reply, result.status === 503 ? 'storage_unavailable' : 'not_found', result.message);
    }
    return result.record;
  });
};

/**
 * `GET /api/audit?from=&to=&device=&afterId=&limit=` (engineer): audit records in chain order,
 * each with its UTC time in ISO 8601 beside the epoch ms. `next` is the afterId of the following page.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { AUDIT_QUERY_MAX, type AuditLog } from '../audit/auditLog.js';
import { LimitParam, TimeParam } from '../control/requestSchemas.js';
import { sendBadRequest, zodIssues } from '../errors.js';

export interface AuditRoutesOptions {
  audit: Pick<AuditLog, 'query'>;
}

const QuerySchema = z.object({
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  device: z.string().min(1).max(64).optional(),
  afterId: z.string().regex(/^\d{1,15}$/, 'expected a record id').transform(Number).optional(),
  limit: LimitParam(AUDIT_QUERY_MAX).optional(),
}).strict();

export const auditRoutes: FastifyPluginAsync<AuditRoutesOptions> = async (app, opts) => {
  app.get('/api/audit', async (req, reply) => {
    const q = QuerySchema.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    const limit = q.data.limit ?? 1000;
    const records = opts.audit.query({ ...q.data, limit }).map((r) => ({ ...r, time: new Date(r.at).toISOString() }));
    return { records, next: records.length === limit ? records[records.length - 1].id : null };
  });
};

/**
 * Perfusion record routes (roles in src/auth/routeRoles.ts):
 * `GET /api/sessions/:id/record?device=` (viewer): the RecordView JSON: the record, its SHA-256, the signature
 * manifest and the amendments made after the first signature (src/record/service.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { sendBadRequest, zodIssues } from '../errors.js';
import type { RecordView } from '../record/types.js';
import type { SessionService } from '../sessions/service.js';
import type { SessionRecord } from '../sessions/types.js';
import { DeviceParam, lookupSession } from './sessionLookup.js';

export interface RecordRoutesOptions {
  sessions: SessionService;
  /** The gateway's RecordService (one instance for these routes and signing). */
  records: { view(rec: SessionRecord): Promise<RecordView> };
}

const RecordQuery = z.object({ device: DeviceParam.optional() }).strict();

type Params = { Params: { id: string } };

export const recordRoutes: FastifyPluginAsync<RecordRoutesOptions> = async (app, opts) => {
  app.get<Params>('/api/sessions/:id/record', async (req, reply) => {
    const q = RecordQuery.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    const record = lookupSession(opts.sessions, req.params.id, q.data.device, reply);
    if (!record) return reply;
    return opts.records.view(record);
  });
};

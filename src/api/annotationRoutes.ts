/**
 * Session annotations (issue 5): `POST /api/devices/:id/annotations` (operator) `{"t","kind","subtype","text"}`
 * -> 201 with the stored annotation; `GET /api/annotations?device=&session=&from=&to=&limit=` (viewer), with the
 * session's adverse-event counts when a session is given.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { AnnotationBodySchema, ANNOTATION_QUERY_MAX, type AnnotationStore } from '../control/annotations.js';
import { badRequestBody, LimitParam, TimeParam } from '../control/requestSchemas.js';
import type { DeviceView } from '../model/deviceHub.js';
import { actorOf } from './authPlugin.js';

export interface AnnotationRoutesOptions {
  annotations: AnnotationStore;
  devices: DeviceView;
}

const QuerySchema = z.object({
  device: z.string().min(1).max(64).optional(),
  session: z.string().min(1).max(64).optional(),
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  limit: LimitParam(ANNOTATION_QUERY_MAX).optional(),
}).strict();

const BODY_LIMIT = 8 * 1024;

export const annotationRoutes: FastifyPluginAsync<AnnotationRoutesOptions> = async (app, opts) => {
  app.post<{ Params: { id: string } }>('/api/devices/:id/annotations', { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    const body = AnnotationBodySchema.safeParse(req.body);
    if (!body.success) return reply.code(400).send(badRequestBody(body.error));
    const device = opts.devices.get(req.params.id);
    if (!device) return reply.code(404).send({ error: 'not_found', message: `no device ${req.params.id}` });
    const time = opts.annotations.eventTime(body.data);
    if (!time.ok) {
      return reply.code(400).send({ error: 'bad_request', message: `t: ${time.message}`, issues: [{ path: 't', message: time.message }] });
    }
    const session = body.data.session ?? device.sessionId;
    const annotation = opts.annotations.add(device.id, session, time.t, body.data, actorOf(req));
    return reply.code(201).send(annotation);
  });

  app.get('/api/annotations', async (req, reply) => {
    const q = QuerySchema.safeParse(req.query);
    if (!q.success) return reply.code(400).send(badRequestBody(q.error, ['query']));
    const annotations = opts.annotations.query(q.data);
    const adverseEvents = q.data.session ? opts.annotations.adverseEventCounts(q.data.session) : undefined;
    return { annotations, adverseEvents };
  });
};

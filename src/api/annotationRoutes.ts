/**
 * Session annotations: `POST /api/devices/:id/annotations` (operator) `{"t","kind","subtype","text","session","reason"}`
 * -> 201 with the stored annotation; `GET /api/annotations?device=&session=&from=&to=&limit=` (viewer), with the
 * session's adverse-event counts when a session is given (of that console's session when a device is given).
 *
 * An annotation is bound to the console in the URL: a `session` must have run there (the adverse events of a
 * session are counted by console and session), its time must be a real one, and its text must not carry
 * control or bidi characters. Once the session's record is signed, an annotation amends it and needs a `reason`.
 * Each refusal is a 400 naming the field, counted by reason and logged.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import {
  AnnotationBodySchema, ANNOTATION_QUERY_MAX, AnnotationStats, reasonRequiredMessage, type AnnotationRefusal, type AnnotationStore,
} from '../control/annotations.js';
import { LimitParam, TimeParam } from '../control/requestSchemas.js';
import { badRequest, errorBody, sendBadRequest, statusOf, zodIssues, type ErrorBody } from '../errors.js';
import type { DeviceView } from '../model/deviceHub.js';
import { actorOf } from './authPlugin.js';

export interface AnnotationRoutesOptions {
  annotations: AnnotationStore;
  devices: DeviceView;
  /** Refusal counters for /metrics (the gateway passes its own). */
  stats?: AnnotationStats;
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
  const stats = opts.stats ?? new AnnotationStats();

  app.post<{ Params: { id: string } }>('/api/devices/:id/annotations', { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    const refuse = (reason: AnnotationRefusal, body: ErrorBody) => {
      stats.refuse(reason);
      req.log.warn({ user: actorOf(req).user, device: req.params.id, reason, message: body.message }, 'annotation refused');
      return reply.code(statusOf(body.error)).send(body);
    };
    const body = AnnotationBodySchema.safeParse(req.body);
    if (!body.success) {
      const control = body.error.issues.some((i) => i.code === 'custom' && (i as { params?: { refusal?: string } }).params?.refusal === 'control_characters');
      return refuse(control ? 'control_characters' : 'invalid_body', badRequest(zodIssues(body.error)));
    }
    const device = opts.devices.get(req.params.id);
    if (!device) return refuse('unknown_device', errorBody('not_found', `no device ${req.params.id}`));
    const time = opts.annotations.eventTime(body.data);
    if (!time.ok) {
      return refuse('time', badRequest([{ path: 't', message: time.message }]));
    }
    const named = body.data.session;
    if (named !== undefined && named !== device.sessionId && !opts.annotations.sessionRanOn(device.id, named)) {
      const message = `no session ${named} on ${device.id}: an annotation belongs to a session of the console it is posted to`;
      return refuse('session', badRequest([{ path: 'session', message }]));
    }
    const session = named ?? device.sessionId;
    if (body.data.reason === undefined && session !== null && opts.annotations.sessionSigned(device.id, session)) {
      return refuse('reason_required', badRequest([{ path: 'reason', message: reasonRequiredMessage(device.id, session) }]));
    }
    const annotation = opts.annotations.add(device.id, session, time.t, body.data, actorOf(req));
    return reply.code(201).send(annotation);
  });

  app.get('/api/annotations', async (req, reply) => {
    const q = QuerySchema.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    const annotations = opts.annotations.query(q.data);
    const adverseEvents = q.data.session ? opts.annotations.adverseEventCounts(q.data.session, q.data.device) : undefined;
    return { annotations, adverseEvents };
  });
};

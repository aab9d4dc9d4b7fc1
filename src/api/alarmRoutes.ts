/**
 * Alarm API (issue 3 "Interfaces"): list alarms, acknowledge, shelve, unshelve, out of service, audio pause
 * per device, and the alarm profile in force (changed through src/api/alarmProfileRoutes.ts). Bodies are validated with zod (400 names the field
 * paths); an unknown alarm is 404 and an action its state does not allow is 409. Who may call what is
 * enforced by the access-control work (issue 5, src/auth/routeRoles.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ActionResult, AlarmEngine, AudioPauseResult } from '../alarms/engine.js';
import type { Actor } from '../alarms/types.js';

export interface AlarmRoutesOptions {
  engine: AlarmEngine;
  actorOf: (req: FastifyRequest) => Actor;
  /**
   * Whether the audit trail can be written now. Shelving and out-of-service hide an alarm, so without an audit
   * record they are refused (503); acknowledge and audio pause hide nothing and stay available.
   */
  auditAvailable?: () => boolean;
}

const AUDIT_UNAVAILABLE = {
  error: 'audit_unavailable',
  message: 'the audit trail cannot be written (journal failing): shelving and out-of-service are refused until it can',
};

const ListQuery = z.object({
  state: z.enum(['active', 'all']).default('active'),
  device: z.string().min(1).optional(),
});
const AckBody = z.strictObject({ reason: z.string().max(500).optional() });
const ShelveBody = z.strictObject({
  minutes: z.number().positive().max(480),
  reason: z.string().trim().min(1, 'a reason is required').max(500),
});
const ReasonBody = z.strictObject({ reason: z.string().trim().min(1, 'a reason is required').max(500) });
const OptionalReasonBody = z.strictObject({ reason: z.string().max(500).optional() });

const STATUS = { not_found: 404, invalid_transition: 409, invalid_argument: 400 } as const;

type Params = { id: string };

function parse<S extends z.ZodType>(schema: S, input: unknown, reply: FastifyReply): z.output<S> | null {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.flatMap((i) => {
    const keys = i.code === 'unrecognized_keys' ? i.keys : [null];
    return keys.map((k) => ({ path: [...i.path, ...(k === null ? [] : [k])].join('.'), message: i.message }));
  });
  void reply.code(400).send({
    error: 'bad_request', message: issues.map((i) => `${i.path || '(body)'}: ${i.message}`).join('; '), issues,
  });
  return null;
}

function answer(reply: FastifyReply, r: ActionResult | AudioPauseResult): FastifyReply {
  if (r.ok) return reply.send('alarm' in r ? { alarm: r.alarm } : { deviceId: r.deviceId, until: r.until });
  return reply.code(STATUS[r.error]).send({ error: r.error, message: r.message });
}

export async function alarmRoutes(app: FastifyInstance, opts: AlarmRoutesOptions): Promise<void> {
  const { engine, actorOf } = opts;

  app.get('/api/alarms', async (req, reply) => {
    const q = parse(ListQuery, req.query, reply);
    if (!q) return reply;
    return { alarms: engine.list({ state: q.state, device: q.device }) };
  });

  // Read-only: changing rules at run time (PUT) needs a decision on persisting them; see docs/alarms.md.
  app.get('/api/alarms/profile', async (req, reply) => {
    const q = parse(z.object({ device: z.string().min(1).optional() }), req.query, reply);
    if (!q) return reply;
    if (q.device === undefined) return { profile: engine.currentProfile() };
    return { device: q.device, ...engine.rulesOf(q.device) };
  });

  app.get<{ Params: Params }>('/api/alarms/:id', async (req, reply) => {
    const a = engine.get(req.params.id);
    if (!a) return reply.code(404).send({ error: 'not_found', message: `no alarm ${req.params.id}` });
    return { alarm: a };
  });

  app.post<{ Params: Params }>('/api/alarms/:id/ack', async (req, reply) => {
    const b = parse(AckBody, req.body, reply);
    if (!b) return reply;
    return answer(reply, engine.ack(req.params.id, actorOf(req), b.reason));
  });

  app.post<{ Params: Params }>('/api/alarms/:id/shelve', async (req, reply) => {
    const b = parse(ShelveBody, req.body, reply);
    if (!b) return reply;
    if (opts.auditAvailable && !opts.auditAvailable()) return reply.code(503).send(AUDIT_UNAVAILABLE);
    return answer(reply, engine.shelve(req.params.id, b.minutes, b.reason, actorOf(req)));
  });

  app.post<{ Params: Params }>('/api/alarms/:id/unshelve', async (req, reply) => {
    const b = parse(OptionalReasonBody, req.body, reply);
    if (!b) return reply;
    return answer(reply, engine.unshelve(req.params.id, actorOf(req), b.reason));
  });

  app.post<{ Params: Params }>('/api/alarms/:id/out-of-service', async (req, reply) => {
    const b = parse(ReasonBody, req.body, reply);
    if (!b) return reply;
    if (opts.auditAvailable && !opts.auditAvailable()) return reply.code(503).send(AUDIT_UNAVAILABLE);
    return answer(reply, engine.outOfService(req.params.id, b.reason, actorOf(req)));
  });

  app.post<{ Params: Params }>('/api/alarms/:id/return-to-service', async (req, reply) => {
    const b = parse(OptionalReasonBody, req.body, reply);
    if (!b) return reply;
    return answer(reply, engine.returnToService(req.params.id, actorOf(req), b.reason));
  });

  app.post<{ Params: Params }>('/api/devices/:id/audio-pause', async (req, reply) => {
    const b = parse(OptionalReasonBody, req.body, reply);
    if (!b) return reply;
    return answer(reply, engine.audioPause(req.params.id, actorOf(req)));
  });
}

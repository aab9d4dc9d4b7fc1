/**
 * `POST /api/devices/:id/commands` (operator): `{"verb","args","reason"}` ->
 * `{"cmdId","result":"OK"|"REJ"|"ERR"|"TIMEOUT"|"conflict","detail"}` once the device answered (and a short settle
 * time passed without a contradicting answer: `conflict` otherwise) or the retries ran out.
 * 400 (nothing sent) for a body or command the ICD refuses in the device's current state, 404 for an unknown
 * device, 409 when its link is down, 503 when the audit trail cannot be written.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { CommandService } from '../control/commandService.js';
import { CommandBodySchema } from '../control/requestSchemas.js';
import { sendBadRequest, sendError, zodIssues } from '../errors.js';
import { actorOf } from './authPlugin.js';

export interface CommandRoutesOptions {
  commands: Pick<CommandService, 'execute'>;
}

/** A command body is a few dozen bytes. */
const BODY_LIMIT = 4096;

export const commandRoutes: FastifyPluginAsync<CommandRoutesOptions> = async (app, opts) => {
  app.post<{ Params: { id: string } }>('/api/devices/:id/commands', { bodyLimit: BODY_LIMIT }, async (req, reply) => {
    const body = CommandBodySchema.safeParse(req.body);
    if (!body.success) return sendBadRequest(reply, zodIssues(body.error));
    const res = await opts.commands.execute(req.params.id, body.data, actorOf(req));
    if (!res.ok) {
      const path = res.code === 'wrong_state' ? 'verb' : 'args';
      // A refusal of the command's content (malformed, out_of_limits, wrong_state) names the field like a bad body.
      return sendError(reply, res.code, res.detail, res.status === 400 ? [{ path, message: res.detail }] : undefined);
    }
    return { cmdId: res.cmdId, result: res.result, detail: res.detail, tries: res.tries };
  });
};

/**
 * The session a `/api/sessions/:id...` route is about, shared by the session and perfusion-record routes: the id
 * checked against the ICD's rule (400), then found with `?device=` when the same id ran on several consoles
 * (404 none, 409 ambiguous). On a refusal the answer is sent and null returned.
 */
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { sendBadRequest, sendError } from '../errors.js';
import { SESSION_ID_RE } from '../protocol/commands.js';
import type { SessionService } from '../sessions/service.js';
import type { SessionRecord } from '../sessions/types.js';

/** `?device=`: a console id as the routes take it. */
export const DeviceParam = z.string().min(1).max(64);

export function lookupSession(sessions: SessionService, id: string, device: string | undefined, reply: FastifyReply): SessionRecord | null {
  if (!SESSION_ID_RE.test(id)) {
    void sendBadRequest(reply, [{ path: 'params.id', message: 'a session id is 1-32 of [A-Za-z0-9-] (ICD §1 START)' }]);
    return null;
  }
  const found = sessions.find(id, device);
  if (!found.ok) {
    void sendError(reply, found.status === 404 ? 'not_found' : 'ambiguous', found.message);
    return null;
  }
  return found.record;
}

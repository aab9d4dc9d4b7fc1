/**
 * `POST /api/sessions/:id/signatures` (operator) `{ meaning, password, user?, recordSha256?, device? }`: signs the
 * session's perfusion record as the token's user with their signing password (src/record/signing.ts).
 * 201 `{ signature, view }` (`view` null, and logged, should the view fail after the signature was stored); refusals: 403 `forbidden` (another user's name), 409 `session_running`,
 * 423 `signing_locked` (Retry-After), 403 `no_signing_password`, 403 `signature_refused`, 409 `record_changed`.
 * The password is never logged (the body is not logged, and `password` is redacted by src/log.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Principal } from '../auth/roles.js';
import { TOKEN_NAME_RE } from '../auth/tokenStore.js';
import { sendBadRequest, sendError, zodIssues } from '../errors.js';
import { SESSION_ID_RE } from '../protocol/commands.js';
import type { SignRequest, SignResult } from '../record/signing.js';
import { SIGNING_PASSWORD_MAX_CHARS } from '../record/signingPasswords.js';
import { SIGNATURE_MEANINGS, type RecordSignature, type RecordView } from '../record/types.js';
import type { FindResult } from '../sessions/service.js';
import type { SessionRecord } from '../sessions/types.js';
import { actorOf } from './authPlugin.js';

export interface SignatureRoutesOptions {
  sessions: { find(sessionId: string, device?: string): FindResult };
  signatures: { sign(principal: Principal, rec: SessionRecord, req: SignRequest): Promise<SignResult> };
  /** The record view after signing (RecordService.view). */
  view: (rec: SessionRecord) => Promise<RecordView>;
}

export const SignatureBody = z.object({
  meaning: z.enum(SIGNATURE_MEANINGS),
  password: z.string().min(1).max(SIGNING_PASSWORD_MAX_CHARS),
  user: z.string().regex(TOKEN_NAME_RE, 'a user (token) name: 1-64 of [A-Za-z0-9._@-]').optional(),
  recordSha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'the record\'s SHA-256: 64 hex digits').optional(),
  device: z.string().min(1).max(64).optional(),
}).strict();

export const signatureRoutes: FastifyPluginAsync<SignatureRoutesOptions> = async (app, opts) => {
  app.post<{ Params: { id: string } }>('/api/sessions/:id/signatures', { bodyLimit: 4 * 1024 }, async (req, reply) => {
    const body = SignatureBody.safeParse(req.body);
    if (!body.success) {
      // Never echo the password: zod's messages name the field and the rule, not the value.
      return sendBadRequest(reply, zodIssues(body.error));
    }
    if (!SESSION_ID_RE.test(req.params.id)) {
      return sendBadRequest(reply, [{ path: 'params.id', message: 'a session id is 1-32 of [A-Za-z0-9-] (ICD §1 START)' }]);
    }
    const found = opts.sessions.find(req.params.id, body.data.device);
    if (!found.ok) return sendError(reply, found.status === 404 ? 'not_found' : 'ambiguous', found.message);
    const rec = found.record;
    const { meaning, password, user, recordSha256 } = body.data;
    actorOf(req); // throws when the route is not behind the auth plugin
    const result = await opts.signatures.sign(req.principal!, rec, {
      meaning, password, ...(user !== undefined ? { user } : {}), ...(recordSha256 !== undefined ? { recordSha256: recordSha256.toLowerCase() } : {}),
    });
    if (!result.ok) {
      if (result.retryAfterMs !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(result.retryAfterMs / 1000))));
      return sendError(reply, result.code, result.message);
    }
    // The signature is stored: a view that cannot be made now must not read as a failed signing (the signer would
    // sign twice). It is logged, and the answer is still 201, with `view: null`.
    let view: RecordView | null = null;
    try {
      view = await opts.view(rec);
    } catch (err) {
      req.log.error({ err, auditId: result.signature.auditId }, 'record signed, but its view cannot be made');
    }
    const signature: RecordSignature = view?.signatures.find((s) => s.auditId === result.signature.auditId) ?? {
      // The view lists it (it is read from the same audit trail); without one, the stored facts are answered.
      ...result.signature,
      atUtc: new Date(result.signature.at).toISOString(),
      atLocal: new Date(result.signature.at).toISOString(),
      changedSince: view !== null && result.signature.recordSha256 !== view.sha256,
    };
    return reply.code(201).send({ signature, view });
  });
};

/**
 * Every error a client can see, in one place: its code (the `error` field over HTTP, `code` on the live stream),
 * its HTTP status and a default message. Routes, the live stream and replay answer with these codes only, and a
 * client mistake in a body, a query or a live message is described the same way everywhere: `issues`, one per
 * offending field, `path` joined with '.', the whole body or message being `(body)`.
 *
 * HTTP body:   `{"error": code, "message": text, "issues"?: [{"path", "message"}]}`
 * Live stream: `{"type": "error", "code": code, "message": text, "issues"?: [...], "id"?: ...}`
 *
 * The codes are a contract with the screens and with scripts: a code is never renamed. docs/api-errors.md is the
 * table for readers, checked against this catalogue by test/unit/errors.test.ts.
 */
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';

/** Where a client can meet the code. */
export type ErrorTransport = 'http' | 'ws' | 'both';

export interface ErrorSpec {
  status: number;
  /** Used when the site that raises it has nothing more precise to say. */
  message: string;
  /** For docs/api-errors.md: what the client did or what is wrong on the gateway's side. */
  meaning: string;
  transport: ErrorTransport;
}

export const ERRORS = {
  // Requests that are wrong as sent.
  bad_request: { status: 400, transport: 'http', message: 'the request is not valid',
    meaning: 'a body, query or path parameter fails validation (issues name each field), or the body is not JSON' },
  malformed: { status: 400, transport: 'both', message: 'the command is not one the ICD defines',
    meaning: 'command verb or arguments do not form an ICD command; nothing was sent' },
  out_of_limits: { status: 400, transport: 'both', message: 'a command argument is outside the ICD limits',
    meaning: 'a SET value outside the ICD range or step; nothing was sent' },
  wrong_state: { status: 400, transport: 'both', message: 'the console state does not allow this command',
    meaning: 'the state does not accept the verb; the gateway itself sends such commands and the console answers REJ, so this code is only seen where a CommandService is built with refuseWrongState' },
  invalid_argument: { status: 400, transport: 'http', message: 'an argument of the alarm action is not valid',
    meaning: 'an alarm action with a value the alarm engine refuses (shelve minutes, missing reason)' },
  binary: { status: 400, transport: 'ws', message: 'messages are JSON text', meaning: 'a binary live-stream message' },
  invalid_json: { status: 400, transport: 'ws', message: 'not JSON', meaning: 'a live-stream message that is not JSON' },
  invalid_message: { status: 400, transport: 'ws', message: 'the message is not valid',
    meaning: 'a live-stream or replay message of a known type that fails validation (issues name each field)' },
  unknown_type: { status: 400, transport: 'ws', message: 'unknown message type', meaning: 'a live-stream message type the gateway does not know' },
  too_many_devices: { status: 400, transport: 'ws', message: 'too many devices on this connection',
    meaning: 'more than 1000 devices subscribed one by one; subscribe to "*" instead' },
  // Who is asking.
  unauthorized: { status: 401, transport: 'both', message: 'a valid bearer token is required',
    meaning: 'no token or an unknown or revoked one (WebSocket upgrade: 401 before the stream opens)' },
  unauthenticated: { status: 401, transport: 'ws', message: 'send {"type":"auth","token":...} first',
    meaning: 'a live-stream message other than auth before the connection authenticated' },
  forbidden: { status: 403, transport: 'both', message: 'the role of this token does not allow this',
    meaning: 'the token\'s role is below the one the route or message needs; device data off loopback while loopbackOnly' },
  signature_refused: { status: 403, transport: 'http', message: 'wrong signing password: nothing was signed',
    meaning: 'a signature with a wrong signing password; counted, audited, and five in a row lock signing for that user (signing_locked)' },
  no_signing_password: { status: 403, transport: 'http', message: 'this user has no signing password',
    meaning: 'a signature by a user without a signing password: an administrator sets one with `msc-gateway users set-password`' },
  forbidden_origin: { status: 403, transport: 'ws', message: 'WebSocket from another origin (http.allowedOrigins)',
    meaning: 'a browser page of a foreign origin opened the live stream (upgrade refused)' },
  // What is asked for.
  not_found: { status: 404, transport: 'both', message: 'not found',
    meaning: 'no such route, device, alarm, rule, session or asset; a per-device route for a console never seen' },
  unknown_device: { status: 404, transport: 'both', message: 'no such device', meaning: 'a command to a console the gateway does not know' },
  // The state of things does not allow it.
  invalid_transition: { status: 409, transport: 'http', message: 'the alarm state does not allow this action',
    meaning: 'e.g. unshelving an alarm that is not shelved' },
  no_single_limit: { status: 409, transport: 'http', message: 'this rule has no single limit',
    meaning: 'PUT /api/devices/:id/limits for a detector, state-duration or levelled rule: change the profile instead' },
  nothing_to_confirm: { status: 409, transport: 'http', message: 'the stored alarm profile is in force',
    meaning: 'POST /api/alarms/profile/confirm while nothing needs confirming' },
  ambiguous: { status: 409, transport: 'http', message: 'the session id ran on several consoles: add ?device=',
    meaning: 'a session id used on more than one console, without ?device=' },
  link_lost: { status: 409, transport: 'both', message: 'the console link is down: nothing sent',
    meaning: 'a command while the console\'s link is lost, or while the gateway is stopping' },
  session_running: { status: 409, transport: 'http', message: 'the session is still running: its record is signed once it has ended',
    meaning: 'a signature on the record of a session that has not ended (the record still changes)' },
  record_changed: { status: 409, transport: 'http', message: 'the record changed since it was read: review it again before signing',
    meaning: 'a signature whose recordSha256 is not the record\'s current hash (a late annotation or correction came in between)' },
  already_authenticated: { status: 409, transport: 'ws', message: 'this connection is authenticated',
    meaning: 'a second auth message on a live-stream connection' },
  no_replay: { status: 409, transport: 'ws', message: 'no replay is running on this connection',
    meaning: 'a replay control (pause, seek, ...) without a replay started' },
  too_large: { status: 413, transport: 'http', message: 'the request is too large',
    meaning: 'a body over the route\'s limit, or a change whose audit record would exceed its limit' },
  signing_locked: { status: 423, transport: 'http', message: 'signing is locked after too many wrong signing passwords',
    meaning: 'five wrong signing passwords in a row lock signing for that user for 15 minutes; Retry-After' },
  too_many_requests: { status: 429, transport: 'both', message: 'rate limit reached',
    meaning: 'a user\'s write requests (HTTP writes and live-stream commands together) over the rate limit; Retry-After' },
  rate_limited: { status: 429, transport: 'ws', message: 'subscribe refused: too many subscribes',
    meaning: 'live-stream subscribes over their per-connection rate, or snapshots still being sent; retryAfterMs' },
  // The gateway cannot do it now.
  internal: { status: 500, transport: 'both', message: 'internal error: the gateway log has the detail',
    meaning: 'a fault in the gateway; logged with the detail' },
  storage_unavailable: { status: 503, transport: 'both', message: 'the journal cannot be read or written now',
    meaning: 'the journal (SQLite) is closed, full, corrupt, locked or failing; /healthz tells why' },
  audit_unavailable: { status: 503, transport: 'both', message: 'the audit trail cannot be written: nothing was done',
    meaning: 'an action that must be audited first (command, shelve, out of service, limit change) was refused' },
  not_persisted: { status: 503, transport: 'http', message: 'the change cannot be stored: it was not made',
    meaning: 'an alarm profile change that cannot be written to its file' },
  busy: { status: 503, transport: 'both', message: 'too many clients',
    meaning: 'live-stream client cap, unauthenticated-socket cap, or concurrent replays reached; two record PDFs being made already (Retry-After)' },
  unavailable: { status: 503, transport: 'ws', message: 'not available on this gateway',
    meaning: 'commands not enabled, or replay without a journal or InfluxDB' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERRORS, code);
}

export function statusOf(code: ErrorCode): number {
  return ERRORS[code].status;
}

/** One offending field. `path` is the field's dotted path (`args.1`, `query.limit`), or ROOT_PATH. */
export interface FieldIssue {
  path: string;
  message: string;
}

/** The path of an issue about the body (or live message) as a whole. */
export const ROOT_PATH = '(body)';

export interface ErrorBody {
  error: ErrorCode;
  message: string;
  issues?: FieldIssue[];
}

/**
 * zod issues as FieldIssues: `root` is prepended (`['query']` for a query string, `['params','id']` for a path
 * parameter). An unknown field is named by its own path (one issue per key), so `{"extra":1}` is `extra`,
 * never the parent object.
 */
export function zodIssues(error: z.ZodError, root: readonly string[] = []): FieldIssue[] {
  return error.issues.flatMap((i) => {
    const at = [...root, ...i.path.map(String)];
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => ({ path: [...at, k].join('.'), message: `Unrecognized key: ${JSON.stringify(k)}` }));
    }
    return [{ path: at.join('.') || ROOT_PATH, message: i.message }];
  });
}

/** `path: message; path: message`: the `message` of a validation error. */
export function issuesText(issues: readonly FieldIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}

/** The body of an error answer; the message defaults to the issues, then to the catalogue's. */
export function errorBody(code: ErrorCode, message?: string, issues?: FieldIssue[]): ErrorBody {
  const text = message ?? (issues && issues.length > 0 ? issuesText(issues) : ERRORS[code].message);
  return issues === undefined ? { error: code, message: text } : { error: code, message: text, issues };
}

/** A 400 naming the fields: `badRequest(zodIssues(err, ['query']))` or `badRequest([{ path, message }])`. */
export function badRequest(issues: FieldIssue[]): ErrorBody {
  return errorBody('bad_request', undefined, issues);
}

/** Sends the catalogue's status with the one body shape. */
export function sendError(reply: FastifyReply, code: ErrorCode, message?: string, issues?: FieldIssue[]): FastifyReply {
  return reply.code(ERRORS[code].status).send(errorBody(code, message, issues));
}

/** A 400 naming the fields, sent. */
export function sendBadRequest(reply: FastifyReply, issues: FieldIssue[]): FastifyReply {
  return reply.code(ERRORS.bad_request.status).send(badRequest(issues));
}

/** Thrown where a handler cannot answer itself; the API's error handler sends it as it is. */
export class GatewayError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    readonly issues?: FieldIssue[],
    /** For the log only, never sent to the client. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'GatewayError';
    this.status = ERRORS[code].status;
  }

  get body(): ErrorBody {
    return errorBody(this.code, this.message, this.issues);
  }
}

/** The code a 4xx thrown by fastify itself (body parser, limits, routing) is answered with. */
export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 401: return 'unauthorized';
    case 403: return 'forbidden';
    case 404: return 'not_found';
    case 413: return 'too_large';
    case 429: return 'too_many_requests';
    default: return status >= 500 ? 'internal' : 'bad_request';
  }
}

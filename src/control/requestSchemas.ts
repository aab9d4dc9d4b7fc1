/**
 * Request bodies of the control API, validated with zod: a bad body is a 400 naming each offending
 * field path (src/errors.ts formats them), and nothing reaches the device. Shared by the HTTP routes and the
 * live stream.
 */
import { z } from 'zod';
import { COMMAND_VERBS } from '../protocol/types.js';

export const REASON_MAX = 500;

/** ICD §2: args are JSON strings or numbers; the ICD's own limits are checked by checkCommand. */
export const CommandBodySchema = z.object({
  verb: z.enum(COMMAND_VERBS),
  args: z.array(z.union([z.string().max(64), z.number()])).max(4).default([]),
  reason: z.string().max(REASON_MAX).nullish(),
}).strict();
export type CommandBody = z.infer<typeof CommandBodySchema>;

/** A time in a query string: epoch milliseconds, or ISO 8601 with an offset (`2026-01-05T10:00:00Z`). */
export const TimeParam = z.string().transform((s, ctx) => {
  const t = /^\d{1,16}$/.test(s) ? Number(s) : /^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:?\d{2})$/.test(s) ? Date.parse(s) : NaN;
  if (!Number.isFinite(t)) {
    ctx.addIssue({ code: 'custom', message: 'expected epoch milliseconds or an ISO 8601 time with offset' });
    return z.NEVER;
  }
  return t;
});

export const LimitParam = (max: number) => z.string().regex(/^\d{1,6}$/, 'expected a positive integer')
  .transform(Number).pipe(z.number().int().min(1).max(max));

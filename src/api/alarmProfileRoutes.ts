/**
 * Alarm-limit and rule changes at run time (engineer role):
 * - `PUT /api/alarms/profile` `{profile, reason}`: replaces the run-time profile document (the rule language of
 *   docs/alarms.md), applied on top of the configured profile;
 * - `PUT /api/devices/:id/limits` `{rule, limit, deadband?, onDelayMs?, reason}`: one rule's limit for one
 *   device, written as that device's patch in the same document.
 * Every change is validated with the engine's schema (400 names the field paths), then committed by
 * alarms/profileChanges.ts: audited BEFORE it takes effect (503 audit_unavailable, 413 too_large when refused),
 * persisted (503 not_persisted), applied. These routes only translate HTTP to that and its outcome back.
 * Handlers are synchronous from validation to apply, so two changes cannot interleave.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AlarmEngine } from '../alarms/engine.js';
import {
  commitProfileChange, confirmProfileProblem, type AlarmProfileChange, type ChangeRefusal,
} from '../alarms/profileChanges.js';
import type { AlarmProfileStore, ProfileDocument } from '../alarms/profileStore.js';
import { ProfileFileSchema, type Rule, type RulePatch } from '../alarms/rules.js';
import type { Actor } from '../alarms/types.js';
import type { AuditRecord, AuditSink } from '../audit/auditLog.js';
import { REASON_MAX } from '../control/requestSchemas.js';
import { ROOT_PATH, sendBadRequest, sendError, zodIssues, type FieldIssue } from '../errors.js';

export interface AlarmProfileRoutesOptions {
  engine: Pick<AlarmEngine, 'currentProfile' | 'rulesOf' | 'updateProfile'>;
  audit: AuditSink;
  store: AlarmProfileStore;
  actorOf: (req: FastifyRequest) => Actor;
  /**
   * Whether a console id was ever seen (live or journaled). A limit for any other id (a typo) would be audited
   * and stored for a console that does not exist while the real one keeps its old limit: 404 instead. A device
   * the configured profile or the run-time document names is accepted too (set up before it first connects).
   */
  deviceKnown?: (id: string) => boolean;
}

/**
 * ICD §1 "Telemetry channels", sensor range column. Channels without a range there (detectors, setpoints) and
 * channels newer firmware adds have no entry.
 */
export const SENSOR_RANGE: Readonly<Record<string, { min: number; max: number; unit: string }>> = Object.freeze({
  QB: { min: 0, max: 400, unit: 'mL/min' },
  QP: { min: 0, max: 100, unit: 'mL/min' },
  QR: { min: 0, max: 500, unit: 'mL/min' },
  PA: { min: -400, max: 100, unit: 'mmHg' },
  PF: { min: -100, max: 500, unit: 'mmHg' },
  PV: { min: -100, max: 500, unit: 'mmHg' },
  PP: { min: -400, max: 300, unit: 'mmHg' },
  TMP: { min: -100, max: 500, unit: 'mmHg' },
  DPR: { min: 0, max: 300, unit: 'mmHg' },
  TR: { min: 20, max: 45, unit: '°C' },
  TB: { min: 20, max: 45, unit: '°C' },
  HEP: { min: 0, max: 20, unit: 'mL/h' },
  PH: { min: 6.5, max: 8.0, unit: 'pH' },
  DO: { min: 0, max: 150, unit: '% air sat.' },
});

/** A profile document is a few KiB; the audit trail keeps old and new in one record (64 KiB at most). */
const PROFILE_BODY_LIMIT = 64 * 1024;
const LIMITS_BODY_LIMIT = 4096;

const Reason = z.string().trim().min(1, 'a reason is required').max(REASON_MAX);
const ProfileBody = z.strictObject({ profile: ProfileFileSchema, reason: Reason });
const ConfirmBody = z.strictObject({ reason: Reason });
const LimitsBody = z.strictObject({
  rule: z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'a rule id such as PV_HIGH'),
  limit: z.number().finite(),
  deadband: z.number().finite().nonnegative().optional(),
  onDelayMs: z.number().int().nonnegative().optional(),
  reason: Reason,
});
// `__proto__` would not survive as a key of the stored document.
const DeviceParam = z.string().min(1).max(64).refine((id) => id !== '__proto__', 'not a device id');

/** parseProfile's `path: message` lines, as issues under `root` (the body field the document came in). */
function profileIssues(errors: string[], root: string | null): FieldIssue[] {
  return errors.flatMap((e) => e.split('\n')).map((line) => {
    const at = line.indexOf(': ');
    // parseProfile calls the document itself `(root)`: here it is `root`, or the body's root path.
    const path = at < 0 ? '(root)' : line.slice(0, at);
    const full = path === '(root)' ? root ?? ROOT_PATH : root === null ? path : `${root}.${path}`;
    return { path: full, message: at < 0 ? line : line.slice(at + 2) };
  });
}

/**
 * Why `limit` cannot be this rule's limit, or null. A limit the sensor can never cross turns the alarm off
 * without saying so.
 * ICD: §1 gives sensor ranges, not alarm-limit ranges. Safe reading: a high limit at or above the range's top
 * (a low limit at or below its bottom) can never be crossed, so it is refused too; a limit that is a difference
 * (deviation, rise) must lie within the range's span; percent limits have no ICD range and must be >= 0; a
 * channel the ICD does not list has no known range and is not checked beyond the rule schema.
 */
export function limitProblem(rule: Rule, limit: number): string | null {
  if (rule.kind === 'detector' || rule.kind === 'stateDuration') return `${rule.id} has no limit`;
  const percent = (rule.kind === 'high' || rule.kind === 'low') ? rule.percentOf !== undefined
    : rule.kind === 'deviation' && rule.mode === 'percent';
  if (percent) return limit < 0 ? `${rule.id}'s limit is a percentage and cannot be negative` : null;
  const range = Object.hasOwn(SENSOR_RANGE, rule.channel) ? SENSOR_RANGE[rule.channel] : undefined;
  if (!range) return null;
  const { min, max, unit } = range;
  const sensor = `the ICD sensor range of ${rule.channel} (${min} to ${max} ${unit})`;
  if (rule.kind === 'high' && !(limit >= min && limit < max)) return `limit ${limit} is outside ${sensor}: it must be >= ${min} and < ${max}`;
  if (rule.kind === 'low' && !(limit > min && limit <= max)) return `limit ${limit} is outside ${sensor}: it must be > ${min} and <= ${max}`;
  if ((rule.kind === 'deviation' || rule.kind === 'rise') && !(limit >= 0 && limit < max - min)) {
    return `limit ${limit} is a difference outside ${sensor}: it must be >= 0 and < ${max - min}`;
  }
  return null;
}

/** The rule as it applies to a device now, disabled or not; undefined when neither profile nor device has it. */
function ruleFor(engine: AlarmProfileRoutesOptions['engine'], deviceId: string, ruleId: string): Rule | undefined {
  return engine.rulesOf(deviceId).rules.find((r) => r.id === ruleId)
    ?? engine.currentProfile().rules.find((r) => r.id === ruleId);
}

const REFUSAL_STATUS: Record<ChangeRefusal | 'nothing_to_confirm', number> = {
  too_large: 413, audit_unavailable: 503, not_persisted: 503, nothing_to_confirm: 409,
};

export async function alarmProfileRoutes(app: FastifyInstance, opts: AlarmProfileRoutesOptions): Promise<void> {
  const { engine, audit, store, actorOf } = opts;

  const deps = { engine, audit, store };
  /** The change committed (audit, persist, apply), or the refusal answered; null when refused. */
  const commit = (req: FastifyRequest, reply: FastifyReply, c: AlarmProfileChange): AuditRecord | null => {
    const outcome = commitProfileChange(deps, c, req.log);
    if (outcome.ok) return outcome.record;
    void sendError(reply, outcome.refusal, outcome.message);
    return null;
  };

  app.put('/api/alarms/profile', { bodyLimit: PROFILE_BODY_LIMIT }, async (req, reply) => {
    const body = ProfileBody.safeParse(req.body ?? {});
    if (!body.success) return sendBadRequest(reply, zodIssues(body.error));
    const { profile: document, reason } = body.data;
    // The engine keeps the technical thresholds it was built with: a change accepted now would not be in force.
    if (document.technical !== undefined && Object.keys(document.technical).length > 0) {
      return sendBadRequest(reply, [{
        path: 'profile.technical', message: 'technical thresholds are set at start: change the configured profile and restart',
      }]);
    }
    const resolved = store.resolve(document);
    if (!resolved.ok) return sendBadRequest(reply, profileIssues(resolved.errors, 'profile'));
    const old = store.current();
    const record = commit(req, reply, {
      actor: actorOf(req), device: null, action: 'alarm.profile.change', reason, document, profile: resolved.profile,
      detail: { old, new: document, reason },
    });
    if (!record) return reply;
    return { profile: engine.currentProfile(), document: store.current(), auditId: record.id };
  });

  app.put<{ Params: { id: string } }>('/api/devices/:id/limits', { bodyLimit: LIMITS_BODY_LIMIT }, async (req, reply) => {
    const device = DeviceParam.safeParse(req.params.id);
    if (!device.success) return sendBadRequest(reply, zodIssues(device.error, ['params', 'id']));
    const body = LimitsBody.safeParse(req.body ?? {});
    if (!body.success) return sendBadRequest(reply, zodIssues(body.error));
    const deviceId = device.data;
    const b = body.data;
    const named = Object.hasOwn(store.base.devices, deviceId) || Object.hasOwn(store.current().devices ?? {}, deviceId);
    if (opts.deviceKnown && !opts.deviceKnown(deviceId) && !named) {
      return sendError(reply, 'not_found',
        `no device ${deviceId}: it has never connected to this gateway (a console not yet connected gets its limits in the profile document, PUT /api/alarms/profile)`);
    }
    const rule = ruleFor(engine, deviceId, b.rule);
    if (!rule) return sendError(reply, 'not_found', `no rule ${b.rule} for device ${deviceId}`);
    if (rule.kind === 'detector' || rule.kind === 'stateDuration' || rule.limit === undefined) {
      return sendError(reply, 'no_single_limit',
        `${rule.id} (${rule.kind}${rule.kind !== 'detector' && rule.levels ? ', levels' : ''}) has no single limit: change it with PUT /api/alarms/profile`);
    }
    const problem = limitProblem(rule, b.limit);
    if (problem) return sendBadRequest(reply, [{ path: 'limit', message: problem }]);

    const old = { limit: rule.limit, deadband: rule.deadband, onDelayMs: Math.round(rule.onDelayS * 1000) };
    const next = { limit: b.limit, deadband: b.deadband ?? old.deadband, onDelayMs: b.onDelayMs ?? old.onDelayMs };
    const patch: RulePatch = {
      limit: b.limit,
      ...(b.deadband === undefined ? {} : { deadband: b.deadband }),
      ...(b.onDelayMs === undefined ? {} : { onDelayS: b.onDelayMs / 1000 }),
    };
    const before = store.current();
    // A device's entry in the document replaces the configured one as a whole (parseProfile merges by device),
    // so the first change for a device starts from the configured patches: only this rule's fields change.
    const configured = store.base.devices;
    const devicePatches: Record<string, RulePatch> = before.devices && Object.hasOwn(before.devices, deviceId)
      ? before.devices[deviceId]
      : Object.hasOwn(configured, deviceId) ? { ...configured[deviceId] } : {};
    const rulePatch = Object.hasOwn(devicePatches, rule.id) ? devicePatches[rule.id] : {};
    const document: ProfileDocument = {
      ...before,
      devices: { ...before.devices, [deviceId]: { ...devicePatches, [rule.id]: { ...rulePatch, ...patch } } },
    };
    const resolved = store.resolve(document);
    if (!resolved.ok) return sendBadRequest(reply, profileIssues(resolved.errors, null));

    const record = commit(req, reply, {
      actor: actorOf(req), device: deviceId, action: 'alarm.limit.change', reason: b.reason, document, profile: resolved.profile,
      detail: { rule: rule.id, old, new: next, reason: b.reason, profile: { old: before, new: document } },
    });
    if (!record) return reply;
    return {
      device: deviceId, rule: engine.rulesOf(deviceId).rules.find((r) => r.id === rule.id) ?? null,
      old, new: next, auditId: record.id,
    };
  });

  /**
   * The stored profile changes could not be used and the configured profile runs instead (ALARM_PROFILE, HIGH):
   * an engineer who has checked the limits in force confirms it, with a reason, audited. Saving a new profile
   * (above) also clears it.
   */
  app.post('/api/alarms/profile/confirm', async (req, reply) => {
    const body = ConfirmBody.safeParse(req.body ?? {});
    if (!body.success) return sendBadRequest(reply, zodIssues(body.error));
    const outcome = confirmProfileProblem(deps, actorOf(req), body.data.reason, req.log);
    if (!outcome.ok) return sendError(reply, outcome.refusal, outcome.message);
    return { confirmed: outcome.confirmed, profile: engine.currentProfile(), auditId: outcome.record.id };
  });
}

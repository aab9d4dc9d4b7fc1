/**
 * How a run-time alarm-profile change takes effect: audited with its old and new value and reason BEFORE it
 * takes effect (21 CFR Part 11: a change that cannot be recorded is not made), then persisted (a change that
 * would be lost at the next restart is not made either: the limits at the bedside would silently go back),
 * then applied to the engine. Synchronous from audit to apply, so two changes cannot interleave.
 *
 * The HTTP routes (api/alarmProfileRoutes.ts) validate the request, build the new document and translate the
 * outcome into a status code; they never touch the audit trail, the store or the engine in between.
 */
import type { AuditRecord, AuditSink } from '../audit/auditLog.js';
import type { Logger } from '../log.js';
import type { AlarmEngine } from './engine.js';
import type { AlarmProfileStore, ProfileDocument } from './profileStore.js';
import type { AlarmProfile } from './rules.js';
import type { Actor } from './types.js';

export interface ProfileChangeDeps {
  engine: Pick<AlarmEngine, 'updateProfile'>;
  audit: AuditSink;
  store: Pick<AlarmProfileStore, 'save' | 'file' | 'loadProblem' | 'confirm'>;
}

/** The request's logger (fastify's `req.log`) or the gateway's. */
export type ChangeLog = Pick<Logger, 'info' | 'error'>;

export interface AlarmProfileChange {
  actor: Actor;
  /** The device of a limit change; null for the whole document. */
  device: string | null;
  action: 'alarm.profile.change' | 'alarm.limit.change';
  /** What the audit record keeps: old and new values and the reason. */
  detail: Record<string, unknown>;
  reason: string;
  /** The document to persist, and the profile it resolves to (already validated by the store). */
  document: ProfileDocument;
  profile: AlarmProfile;
}

/**
 * Why a change was not made. `too_large`: the audit trail refuses a detail that big (the change, not the trail,
 * is at fault); `audit_unavailable`: the trail cannot be written; `not_persisted`: the profile file cannot be.
 */
export type ChangeRefusal = 'too_large' | 'audit_unavailable' | 'not_persisted';

export type ChangeOutcome = { ok: true; record: AuditRecord } | { ok: false; refusal: ChangeRefusal; message: string };

/** Audit, persist, apply, in that order; nothing after a step that failed. */
export function commitProfileChange(deps: ProfileChangeDeps, c: AlarmProfileChange, log: ChangeLog): ChangeOutcome {
  const { audit, store, engine } = deps;
  const entry = { user: c.actor.user, role: c.actor.role, device: c.device, action: c.action, detail: c.detail };
  let record: AuditRecord;
  try {
    record = audit.append({ ...entry, outcome: 'accepted' });
  } catch (err) {
    log.error({ err, action: c.action }, 'audit unavailable: alarm profile change refused');
    // The audit log refuses an over-long detail with a RangeError: that change is too large, not the trail down.
    if (err instanceof RangeError) return { ok: false, refusal: 'too_large', message: `${err.message}: the change was not made` };
    return { ok: false, refusal: 'audit_unavailable', message: 'the audit trail cannot be written: the change was not made' };
  }
  try {
    store.save(c.document, { changedBy: c.actor.user, reason: c.reason });
  } catch (err) {
    log.error({ err, file: store.file }, 'alarm profile cannot be persisted: change not applied');
    // The accepted record above must not stand alone: the trail says the change was not made after all.
    try {
      audit.append({ ...entry, detail: { auditId: record.id, error: (err as Error).message }, outcome: 'failed' });
    } catch (auditErr) {
      log.error({ err: auditErr, action: c.action }, 'audit append failed');
    }
    return {
      ok: false, refusal: 'not_persisted',
      message: `the change cannot be written to ${store.file} (${(err as Error).message}): it was not made`,
    };
  }
  engine.updateProfile(c.profile);
  log.info({ user: c.actor.user, device: c.device, action: c.action, auditId: record.id }, 'alarm profile changed');
  return { ok: true, record };
}

export type ConfirmOutcome =
  | { ok: true; confirmed: string; record: AuditRecord }
  | { ok: false; refusal: 'nothing_to_confirm' | 'audit_unavailable'; message: string };

/**
 * The stored profile changes could not be used and the configured profile runs instead (ALARM_PROFILE, HIGH):
 * an engineer who has checked the limits in force confirms it, with a reason, audited before it takes effect.
 */
export function confirmProfileProblem(deps: ProfileChangeDeps, actor: Actor, reason: string, log: ChangeLog): ConfirmOutcome {
  const problem = deps.store.loadProblem;
  if (problem === null) return { ok: false, refusal: 'nothing_to_confirm', message: 'the stored alarm profile is in force' };
  let record: AuditRecord;
  try {
    record = deps.audit.append({
      user: actor.user, role: actor.role, device: null, action: 'alarm.profile.confirm', outcome: 'accepted',
      detail: { problem, reason },
    });
  } catch (err) {
    log.error({ err }, 'audit unavailable: alarm profile confirmation refused');
    return { ok: false, refusal: 'audit_unavailable', message: 'the audit trail cannot be written: nothing was confirmed' };
  }
  deps.store.confirm();
  log.info({ user: actor.user, auditId: record.id }, 'alarm profile in force confirmed by an engineer');
  return { ok: true, confirmed: problem, record };
}

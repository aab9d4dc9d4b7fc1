/**
 * Electronic signatures on a session's perfusion record (21 CFR 11.50, 11.70, 11.100, 11.200).
 *
 * A signature is the audit record `record.signed` (device, session; detail: sessionKey, meaning, recordSha256,
 * printedName) in the hash-chained trail: the manifest is read back from those records only, so
 * `msc-gateway audit verify` covers every signature, and the hash binds it to the exact record the signer saw.
 *
 * Two components (11.200(a)(1)): the API token that identifies the user, and the user's signing password
 * (signingPasswords.ts), checked at each signing. The checks run in a fixed order: someone else's name
 * (forbidden), a session still running, a locked user, no signing password, a wrong password, a record that
 * changed since the signer read it. Every refusal is audited `record.sign` / `refused` with its reason (`why`; a
 * claim to be someone else also names the claimed user) and counted.
 *
 * Five wrong passwords IN A ROW lock signing for that user for 15 minutes (audited `record.sign.lockout`); a
 * right one resets the count. Count and lock are kept in the journal database (`signing_failures`), so a restart
 * does not reset them. Attempts of one user are checked one after another, so parallel guesses cannot pass the
 * lock between a check and its count.
 */
import type { Database, Statement } from 'better-sqlite3';
import type { AuditRecord, AuditSink } from '../audit/auditLog.js';
import type { Principal } from '../auth/roles.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { counter, type Registry } from '../metrics.js';
import type { SessionRecord } from '../sessions/types.js';
import { durableTransaction } from '../storage/schema.js';
import { journalUnavailable } from '../storage/types.js';
import type { PasswordCheck, SigningPasswordInfo } from './signingPasswords.js';
import { SIGNATURE_MEANINGS, type RecordSignature, type SignatureMeaning } from './types.js';

export const SIGNING_MAX_FAILURES = 5;
export const SIGNING_LOCK_MS = 15 * 60_000;

/** Why a signature was refused (`record.sign` detail.why, and the label of msc_signature_refusals_total). */
export const SIGN_REFUSALS = ['user_mismatch', 'session_running', 'locked', 'no_signing_password', 'wrong_password', 'record_changed'] as const;
export type SignRefusal = (typeof SIGN_REFUSALS)[number];

export interface SignRequest {
  meaning: SignatureMeaning;
  password: string;
  /** The user the signer means to sign as: must be the token's user. */
  user?: string;
  /** The record hash the signer saw: must be the current one. */
  recordSha256?: string;
}

/** The signature as written; the route answers with the manifest entry of the record view (time zone, changedSince). */
export type SignedEntry = Omit<RecordSignature, 'atUtc' | 'atLocal' | 'changedSince'>;

export type SignResult =
  | { ok: true; signature: SignedEntry; audit: AuditRecord }
  | { ok: false; why: SignRefusal; code: ErrorCode; message: string; retryAfterMs?: number };

/** The part of the password store signing needs. */
export interface SigningPasswords {
  get(name: string): SigningPasswordInfo | null;
  verify(name: string, password: string): Promise<PasswordCheck>;
}

export interface SignatureServiceOptions {
  /** The journal's handle; null until it opens (signing is then 503, like every audited action). */
  db: Database | null;
  audit: AuditSink;
  passwords: SigningPasswords;
  /** The record's current hash (RecordService.current). */
  current: (rec: SessionRecord) => Promise<{ sha256: string }>;
  now?: () => number;
  logger?: Logger | null;
  maxFailures?: number;
  lockMs?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS signing_failures (
  user TEXT PRIMARY KEY,
  failures INTEGER NOT NULL,
  locked_until INTEGER
);
`;

interface FailureRow { failures: number; locked_until: number | null }

export class SignatureService {
  private db: Database | null;
  private started = false;
  private stmts: {
    get: Statement<[string], FailureRow>;
    put: Statement<[string, number, number | null]>;
    clear: Statement<[string]>;
  } | null = null;
  private readonly now: () => number;
  private readonly maxFailures: number;
  private readonly lockMs: number;
  /** Per user: the attempt in progress, so attempts of one user are checked one after another. */
  private readonly queues = new Map<string, Promise<unknown>>();
  readonly signed: Record<SignatureMeaning, number> = Object.fromEntries(SIGNATURE_MEANINGS.map((m) => [m, 0])) as Record<SignatureMeaning, number>;
  readonly refused: Record<SignRefusal, number> = Object.fromEntries(SIGN_REFUSALS.map((w) => [w, 0])) as Record<SignRefusal, number>;

  constructor(private readonly opts: SignatureServiceOptions) {
    this.db = opts.db;
    this.now = opts.now ?? Date.now;
    this.maxFailures = opts.maxFailures ?? SIGNING_MAX_FAILURES;
    this.lockMs = opts.lockMs ?? SIGNING_LOCK_MS;
  }

  /** Creates the failure table (without a handle, when it comes). */
  start(): void {
    this.started = true;
    const db = this.db;
    if (this.stmts || !db) return;
    db.exec(SCHEMA);
    this.stmts = {
      get: db.prepare('SELECT failures, locked_until FROM signing_failures WHERE user = ?'),
      put: db.prepare(`INSERT INTO signing_failures (user, failures, locked_until) VALUES (?, ?, ?)
        ON CONFLICT(user) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until`),
      clear: db.prepare('DELETE FROM signing_failures WHERE user = ?'),
    };
  }

  stop(): void {}

  /** Switches to the journal's new handle after it reopened (`journal.onOpen`). */
  useDatabase(db: Database): void {
    if (db === this.db) return;
    this.db = db;
    this.stmts = null;
    if (this.started) this.start();
  }

  /** Until when `user` may not sign (ms), or null. */
  lockedUntil(user: string): number | null {
    const row = this.statements().get.get(user);
    return row?.locked_until != null && row.locked_until > this.now() ? row.locked_until : null;
  }

  /** Wrong passwords in a row since the last right one or lockout. */
  failures(user: string): number {
    return this.statements().get.get(user)?.failures ?? 0;
  }

  /** Signs the session's record as `principal`, or says why not (audited). Storage errors throw (503). */
  sign(principal: Principal, rec: SessionRecord, req: SignRequest): Promise<SignResult> {
    const user = principal.user;
    const previous = this.queues.get(user) ?? Promise.resolve();
    const attempt = previous.then(() => this.attempt(principal, rec, req), () => this.attempt(principal, rec, req));
    const settled = attempt.then(() => undefined, () => undefined);
    this.queues.set(user, settled);
    void settled.then(() => {
      if (this.queues.get(user) === settled) this.queues.delete(user);
    });
    return attempt;
  }

  private async attempt(principal: Principal, rec: SessionRecord, req: SignRequest): Promise<SignResult> {
    const { user } = principal;
    if (!SIGNATURE_MEANINGS.includes(req.meaning)) throw new RangeError(`unknown signature meaning ${String(req.meaning)}`);
    if (req.user !== undefined && req.user !== user) {
      // Audited as the token's user (who asked), naming the user they claimed to be.
      return this.refuse(principal, rec, req, 'user_mismatch', 'forbidden',
        `you sign as yourself: this token is ${user}'s, not ${req.user}'s`, undefined, { claimedUser: req.user });
    }
    if (rec.endedAt === null) {
      return this.refuse(principal, rec, req, 'session_running', 'session_running',
        `session ${rec.sessionId} on ${rec.device} is still running: its record is signed once the session has ended`);
    }
    const until = this.lockedUntil(user);
    if (until !== null) {
      return this.refuse(principal, rec, req, 'locked', 'signing_locked',
        `signing is locked for ${user} after ${this.maxFailures} wrong signing passwords in a row, until ${new Date(until).toISOString()}`,
        until - this.now());
    }
    const who = this.opts.passwords.get(user);
    if (!who) {
      return this.refuse(principal, rec, req, 'no_signing_password', 'no_signing_password',
        `${user} has no signing password: an administrator sets it with "msc-gateway users set-password ${user} --printed-name ..."`);
    }
    const check = await this.opts.passwords.verify(user, req.password);
    if (check === 'none') {
      return this.refuse(principal, rec, req, 'no_signing_password', 'no_signing_password', `${user} has no signing password`);
    }
    if (check === 'wrong') return this.wrongPassword(principal, rec, req);
    this.statements().clear.run(user);

    const { sha256 } = await this.opts.current(rec);
    if (req.recordSha256 !== undefined && req.recordSha256.toLowerCase() !== sha256) {
      return this.refuse(principal, rec, req, 'record_changed', 'record_changed',
        `the record changed since you read it (it was ${req.recordSha256.slice(0, 12)}…, it is now ${sha256.slice(0, 12)}…): review it again before signing`);
    }
    const at = this.now();
    const audit = this.opts.audit.append({
      user, role: principal.role, device: rec.device, session: rec.sessionId, action: 'record.signed', outcome: 'signed', at,
      detail: { sessionKey: rec.key, meaning: req.meaning, recordSha256: sha256, printedName: who.printedName },
    });
    this.signed[req.meaning]++;
    this.opts.logger?.info({ user, meaning: req.meaning, device: rec.device, session: rec.sessionId, auditId: audit.id }, 'record signed');
    return {
      ok: true, audit,
      signature: { auditId: audit.id, user, printedName: who.printedName, role: principal.role, meaning: req.meaning, at, recordSha256: sha256 },
    };
  }

  /** Counts a wrong password; the last one of a row locks signing (both audited in one transaction). */
  private wrongPassword(principal: Principal, rec: SessionRecord, req: SignRequest): SignResult {
    const { user } = principal;
    const db = this.database();
    const now = this.now();
    const locked = durableTransaction(db, () => {
      const failures = (this.statements().get.get(user)?.failures ?? 0) + 1;
      this.opts.audit.append({
        user, role: principal.role, device: rec.device, session: rec.sessionId, action: 'record.sign', outcome: 'refused', at: now,
        detail: { sessionKey: rec.key, meaning: req.meaning, why: 'wrong_password' },
      });
      if (failures < this.maxFailures) {
        this.statements().put.run(user, failures, null);
        return { failures, until: null };
      }
      const until = now + this.lockMs;
      this.opts.audit.append({
        user, role: principal.role, device: rec.device, session: rec.sessionId, action: 'record.sign.lockout', outcome: 'locked', at: now,
        detail: { until, failures },
      });
      this.statements().put.run(user, 0, until);
      return { failures, until };
    });
    this.refused.wrong_password++;
    this.opts.logger?.warn({ user, device: rec.device, session: rec.sessionId, failures: locked.failures, lockedUntil: locked.until }, 'signature refused: wrong signing password');
    if (locked.until !== null) {
      return {
        ok: false, why: 'wrong_password', code: 'signing_locked', retryAfterMs: locked.until - now,
        message: `wrong signing password, ${locked.failures} in a row: signing is locked for ${user} until ${new Date(locked.until).toISOString()}`,
      };
    }
    const left = this.maxFailures - locked.failures;
    return {
      ok: false, why: 'wrong_password', code: 'signature_refused',
      message: `wrong signing password: nothing was signed (${left} more wrong in a row lock${left === 1 ? 's' : ''} signing for ${Math.round(this.lockMs / 60_000)} minutes)`,
    };
  }

  private refuse(
    principal: Principal, rec: SessionRecord, req: SignRequest, why: SignRefusal, code: ErrorCode, message: string,
    retryAfterMs?: number, extra: Record<string, unknown> = {},
  ): SignResult {
    this.opts.audit.append({
      user: principal.user, role: principal.role, device: rec.device, session: rec.sessionId, action: 'record.sign', outcome: 'refused',
      at: this.now(), detail: { sessionKey: rec.key, meaning: req.meaning, why, ...extra },
    });
    this.refused[why]++;
    this.opts.logger?.warn({ user: principal.user, device: rec.device, session: rec.sessionId, why }, 'signature refused');
    return retryAfterMs === undefined ? { ok: false, why, code, message } : { ok: false, why, code, message, retryAfterMs };
  }

  registerMetrics(registry: Registry): void {
    counter(registry, {
      name: 'msc_signatures_total', help: 'Electronic signatures applied to session records, by meaning.', labelNames: ['meaning'],
      read: () => SIGNATURE_MEANINGS.map((meaning) => [{ meaning }, this.signed[meaning]] as const),
    });
    counter(registry, {
      name: 'msc_signature_refusals_total', help: 'Signature attempts refused, by reason.', labelNames: ['why'],
      read: () => SIGN_REFUSALS.map((why) => [{ why }, this.refused[why]] as const),
    });
  }

  private statements(): NonNullable<SignatureService['stmts']> {
    if (!this.stmts) throw this.started ? journalUnavailable('signatures') : new Error('SignatureService used before start()');
    return this.stmts;
  }

  private database(): Database {
    if (!this.db) throw journalUnavailable('signatures');
    return this.db;
  }
}

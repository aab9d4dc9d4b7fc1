/**
 * SignatureService: the order of its checks, the audit records it writes (signatures, refusals, lockouts), the
 * lockout after five wrong passwords in a row (kept across a restart, reset by a right one, not passed by
 * parallel guesses), the record hash the signer saw, and its counters.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { metricsTextOf } from '../../../src/metrics.js';
import { SignatureService, SIGNING_LOCK_MS } from '../../../src/record/signing.js';
import { SigningPasswordStore } from '../../../src/record/signingPasswords.js';
import type { SessionRecord } from '../../../src/sessions/types.js';
import { StorageUnavailableError } from '../../../src/storage/types.js';

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
const PW = 'correct horse battery';
const NURSE = { user: 'nurse1', role: 'operator' as const };
const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

let dir: string;
let db: Database.Database;
let audit: AuditLog;
let clock: number;
let passwords: SigningPasswordStore;
let currentHash: string;
let service: SignatureService;

const ended: SessionRecord = {
  key: 7, sessionId: 'S-1', device: 'MSC-0001', startedAt: T0 - 3_600_000, startedRx: T0 - 3_600_000, endedAt: T0 - 60_000,
  endedRx: T0 - 60_000, endReason: 'ENDED', stateMs: { RUNNING: 3_540_000 }, lastState: 'ENDED', lastStateAt: T0 - 60_000, participant: 'P-1',
};
const running: SessionRecord = { ...ended, key: 8, sessionId: 'S-2', endedAt: null, endedRx: null, endReason: null, lastState: 'RUNNING' };

function open(): void {
  db = new Database(join(dir, 'journal.sqlite'));
  audit = new AuditLog({ db, now: () => clock });
  audit.start();
  service = new SignatureService({ db, audit, passwords, current: async () => ({ sha256: currentHash }), now: () => clock });
  service.start();
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'msc-sign-'));
  clock = T0;
  currentHash = HASH_A;
  passwords = new SigningPasswordStore({ dataDir: dir, now: () => clock, scrypt: { N: 2 ** 14 } });
  await passwords.set('nurse1', 'Ann Nurse', PW, { user: 'cli:root', role: 'admin' });
  passwords.start();
  open();
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const actions = () => audit.query().map((r) => [r.action, r.outcome, r.detail.why ?? null]);

describe('signing', () => {
  it('signs an ended session: one record.signed audit record binding the hash, meaning and printed name', async () => {
    const r = await service.sign(NURSE, ended, { meaning: 'reviewed', password: PW, user: 'nurse1', recordSha256: HASH_A });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const rec = audit.query().at(-1)!;
    expect(rec).toMatchObject({
      id: r.signature.auditId, action: 'record.signed', outcome: 'signed', user: 'nurse1', role: 'operator', device: 'MSC-0001',
      session: 'S-1', at: T0, detail: { sessionKey: 7, meaning: 'reviewed', recordSha256: HASH_A, printedName: 'Ann Nurse' },
    });
    expect(r.signature).toEqual({ auditId: rec.id, user: 'nurse1', printedName: 'Ann Nurse', role: 'operator', meaning: 'reviewed', at: T0, recordSha256: HASH_A });
    expect(JSON.stringify(audit.query())).not.toContain(PW);
    expect(audit.verify()).toMatchObject({ ok: true });
    const text = await metricsTextOf((reg) => service.registerMetrics(reg));
    expect(text).toMatch(/^msc_signatures_total\{meaning="reviewed"\} 1$/m);
    expect(text).toMatch(/^msc_signatures_total\{meaning="approved"\} 0$/m);
  });

  it('checks in order: name, running session, lock, no password, wrong password, changed record', async () => {
    // Everything wrong at once: each fix uncovers the next refusal.
    const stranger = { user: 'stranger', role: 'operator' as const };
    await lockOut(stranger.user, async () => {
      expect(await passwords.set('stranger', 'Sam Stranger', 'another pass phrase', { user: 'cli:root', role: 'admin' })).toMatchObject({ ok: true });
    });
    const since = audit.query().at(-1)!.id;
    const r1 = await service.sign(stranger, running, { meaning: 'authored', password: 'nope nope nope', user: 'nurse1', recordSha256: HASH_B });
    expect(r1).toMatchObject({ ok: false, why: 'user_mismatch', code: 'forbidden' });
    const r2 = await service.sign(stranger, running, { meaning: 'authored', password: 'nope nope nope', recordSha256: HASH_B });
    expect(r2).toMatchObject({ ok: false, why: 'session_running', code: 'session_running' });
    const r3 = await service.sign(stranger, ended, { meaning: 'authored', password: 'nope nope nope', recordSha256: HASH_B });
    expect(r3).toMatchObject({ ok: false, why: 'locked', code: 'signing_locked', retryAfterMs: SIGNING_LOCK_MS });
    const r4 = await service.sign({ user: 'nurse2', role: 'operator' }, ended, { meaning: 'authored', password: 'nope nope nope', recordSha256: HASH_B });
    expect(r4).toMatchObject({ ok: false, why: 'no_signing_password', code: 'no_signing_password', message: expect.stringContaining('msc-gateway users set-password nurse2') });
    const r5 = await service.sign(NURSE, ended, { meaning: 'authored', password: 'nope nope nope', recordSha256: HASH_B });
    expect(r5).toMatchObject({ ok: false, why: 'wrong_password', code: 'signature_refused' });
    const r6 = await service.sign(NURSE, ended, { meaning: 'authored', password: PW, recordSha256: HASH_B });
    expect(r6).toMatchObject({ ok: false, why: 'record_changed', code: 'record_changed' });
    const r7 = await service.sign(NURSE, ended, { meaning: 'authored', password: PW, recordSha256: HASH_A.toUpperCase() });
    expect(r7.ok).toBe(true);
    // Every refusal is audited as the token's user; the name mismatch names the user claimed.
    const refusals = audit.query({ afterId: since }).filter((r) => r.action === 'record.sign');
    expect(refusals[0].detail).toEqual({ sessionKey: 8, meaning: 'authored', why: 'user_mismatch', claimedUser: 'nurse1' });
    expect(refusals.map((r) => [r.user, r.detail.why])).toEqual([
      ['stranger', 'user_mismatch'], ['stranger', 'session_running'], ['stranger', 'locked'], ['nurse2', 'no_signing_password'], ['nurse1', 'wrong_password'], ['nurse1', 'record_changed'],
    ]);
    expect(refusals[1]).toMatchObject({ outcome: 'refused', device: 'MSC-0001', session: 'S-2', detail: { sessionKey: 8, meaning: 'authored', why: 'session_running' } });
    const text = await metricsTextOf((reg) => service.registerMetrics(reg));
    const counts = { user_mismatch: 1, session_running: 1, locked: 1, no_signing_password: 1, wrong_password: 6, record_changed: 1 };
    for (const [why, n] of Object.entries(counts)) {
      expect(text, why).toMatch(new RegExp(`^msc_signature_refusals_total\\{why="${why}"\\} ${n}$`, 'm'));
    }
  });

  /** Five wrong passwords for `user` (after `setup`), the last one locking. */
  async function lockOut(user: string, setup: () => Promise<void> = async () => {}): Promise<void> {
    await setup();
    for (let i = 1; i <= 5; i++) {
      const r = await service.sign({ user, role: 'operator' }, ended, { meaning: 'authored', password: `wrong password ${i}` });
      expect(r).toMatchObject({ ok: false, why: 'wrong_password', code: i < 5 ? 'signature_refused' : 'signing_locked' });
    }
  }

  it('locks signing for 15 minutes after five wrong passwords in a row, across a restart', async () => {
    for (let i = 1; i <= 4; i++) {
      const r = await service.sign(NURSE, ended, { meaning: 'approved', password: `wrong password ${i}` });
      expect(r).toMatchObject({ ok: false, code: 'signature_refused', message: expect.stringContaining(`${5 - i} more wrong`) });
      expect(service.failures('nurse1')).toBe(i);
    }
    clock += 1000;
    const fifth = await service.sign(NURSE, ended, { meaning: 'approved', password: 'wrong password 5' });
    expect(fifth).toMatchObject({ ok: false, why: 'wrong_password', code: 'signing_locked', retryAfterMs: SIGNING_LOCK_MS });
    const lockout = audit.query().find((r) => r.action === 'record.sign.lockout')!;
    expect(lockout).toMatchObject({ outcome: 'locked', user: 'nurse1', detail: { until: clock + SIGNING_LOCK_MS, failures: 5 } });
    // Even the right password is refused while locked.
    const right = await service.sign(NURSE, ended, { meaning: 'approved', password: PW });
    expect(right).toMatchObject({ ok: false, why: 'locked', code: 'signing_locked', retryAfterMs: SIGNING_LOCK_MS });

    // A restart (new handle, new service) keeps the lock.
    db.close();
    clock += 10 * 60_000;
    open();
    const afterRestart = await service.sign(NURSE, ended, { meaning: 'approved', password: PW });
    expect(afterRestart).toMatchObject({ ok: false, why: 'locked', retryAfterMs: 5 * 60_000 });
    clock += 5 * 60_000;
    const signed = await service.sign(NURSE, ended, { meaning: 'approved', password: PW });
    expect(signed.ok).toBe(true);
    expect(actions().filter(([a]) => a !== 'user.signing_password')).toEqual([
      ...Array.from({ length: 5 }, () => ['record.sign', 'refused', 'wrong_password']).flatMap((x, i) => (i === 4 ? [x, ['record.sign.lockout', 'locked', null]] : [x])),
      ['record.sign', 'refused', 'locked'], ['record.sign', 'refused', 'locked'], ['record.signed', 'signed', null],
    ]);
    expect(audit.verify()).toMatchObject({ ok: true });
  });

  it('counts wrong passwords IN A ROW: a right one resets the count', async () => {
    for (let i = 0; i < 4; i++) await service.sign(NURSE, ended, { meaning: 'authored', password: 'wrong password' });
    expect((await service.sign(NURSE, ended, { meaning: 'authored', password: PW })).ok).toBe(true);
    expect(service.failures('nurse1')).toBe(0);
    for (let i = 0; i < 4; i++) {
      expect(await service.sign(NURSE, ended, { meaning: 'reviewed', password: 'wrong password' })).toMatchObject({ code: 'signature_refused' });
    }
    expect(service.lockedUntil('nurse1')).toBeNull();
    // A right password for a changed record still resets the count (it is the password that was right).
    expect(await service.sign(NURSE, ended, { meaning: 'reviewed', password: PW, recordSha256: HASH_B })).toMatchObject({ why: 'record_changed' });
    expect(service.failures('nurse1')).toBe(0);
  });

  it('checks parallel attempts of one user one after another: eight guesses at once get five tries', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      service.sign(NURSE, ended, { meaning: 'authored', password: `parallel guess ${i}` })));
    expect(results.map((r) => (r.ok ? 'ok' : r.why))).toEqual([...Array(5).fill('wrong_password'), ...Array(3).fill('locked')]);
    expect(audit.query().filter((r) => r.action === 'record.sign' && r.detail.why === 'wrong_password')).toHaveLength(5);
  });

  it('answers 503 (StorageUnavailableError) without the journal, and signs nothing', async () => {
    const noJournal = new SignatureService({ db: null, audit, passwords, current: async () => ({ sha256: HASH_A }), now: () => clock });
    noJournal.start();
    await expect(noJournal.sign(NURSE, ended, { meaning: 'authored', password: PW })).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(audit.query().filter((r) => r.action.startsWith('record.'))).toHaveLength(0);
  });
});

/**
 * RecordService on a real journal database: signatures read back from `record.signed` audit records (written
 * through AuditLog, as the signing service does), changedSince when the record moved on, and the amendments
 * made after the first signature with their reasons.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordSha256 } from '../../../src/record/hash.js';
import { RecordService } from '../../../src/record/service.js';
import { StorageUnavailableError } from '../../../src/storage/types.js';
import { DEV, makeFixture, nurse, SESSION, T0, type Fixture } from './fixture.js';

const site = { name: null, gateway: 'gw-test', timeZone: 'Europe/Berlin' };
const doctor = { user: 'dr-b', role: 'operator' };
let fx: Fixture;
let service: RecordService;

const sign = (sha256: string, meaning: string, at: number, sessionKey = fx.record().key) => fx.audit.append({
  ...doctor, device: DEV, session: SESSION, action: 'record.signed', outcome: 'signed', at,
  detail: { sessionKey, meaning, recordSha256: sha256, printedName: 'Dr. B. Example' },
});

beforeAll(() => {
  fx = makeFixture();
  service = new RecordService({ database: () => fx.db, site, now: () => fx.clock.now });
});
afterAll(() => fx?.close());

describe('RecordService', () => {
  it('an unsigned record: its hash, no signatures, no amendments', async () => {
    const view = await service.view(fx.record());
    expect(view.sha256).toBe(recordSha256(view.record));
    expect(view).toMatchObject({ signatures: [], amendments: [], changedSinceSigned: false, generatedAt: new Date(fx.clock.now).toISOString() });
    expect((await service.current(fx.record())).sha256).toBe(view.sha256);
    // An annotation before any signature is part of the record, not an amendment.
    expect(view.record.annotations).toHaveLength(2);
  });

  it('reads the signature manifest from the audit trail, in the site\'s time zone', async () => {
    const { sha256 } = await service.current(fx.record());
    const at = T0 + 3_600_000; // 09:00 UTC in January: 10:00 in Berlin
    const signed = sign(sha256, 'authored', at);
    sign(sha256, 'reviewed', at + 1_000, fx.record().key + 1000); // another session record with the same id: not this one
    fx.audit.append({ ...doctor, device: DEV, session: SESSION, action: 'record.sign', outcome: 'refused', at: at + 2_000,
      detail: { sessionKey: fx.record().key, meaning: 'approved', why: 'wrong_password' } });
    const view = await service.view(fx.record());
    expect(view.signatures).toEqual([{
      auditId: signed.id, user: 'dr-b', printedName: 'Dr. B. Example', role: 'operator', meaning: 'authored',
      at, atUtc: '2026-01-05T09:00:00.000Z', atLocal: '2026-01-05 10:00:00 +01:00', recordSha256: sha256, changedSince: false,
    }]);
    expect(view.changedSinceSigned).toBe(false);
    expect(view.amendments).toEqual([]);
  });

  it('a change after signing: changedSince, and each amendment with what changed and why', async () => {
    const before = await service.current(fx.record());
    fx.clock.now = T0 + 7_200_000;
    fx.annotations.add(DEV, SESSION, T0 + 150_000, { kind: 'note', text: 'late entry:\nheparin bolus given', reason: 'omitted at the time' }, nurse);
    fx.clock.now = T0 + 7_300_000;
    const set = fx.recorder.setParticipant(fx.record().key, 'P-0042', 'enrolment log corrected', nurse);
    expect(set.ok).toBe(true);
    const view = await service.view(fx.record());
    expect(view.sha256).not.toBe(before.sha256);
    expect(view.record.session.participant).toBe('P-0042');
    expect(view.signatures[0]).toMatchObject({ recordSha256: before.sha256, changedSince: true });
    expect(view.changedSinceSigned).toBe(true);
    expect(view.amendments.map(({ auditId: _id, ...a }) => a)).toEqual([
      { at: T0 + 7_200_000, user: nurse.user, role: 'operator', action: 'annotation.add',
        summary: 'note added at 2026-01-05 09:02:30 +01:00: "late entry: heparin bolus given"', reason: 'omitted at the time' },
      { at: T0 + 7_300_000, user: nurse.user, role: 'operator', action: 'session.participant',
        summary: 'participant code (none) \u2192 P-0042', reason: 'enrolment log corrected' },
    ]);
    // Signing the changed record: that signature matches, the first one still does not.
    sign(view.sha256, 'reviewed', T0 + 7_400_000);
    const after = await service.view(fx.record());
    expect(after.signatures.map((s) => [s.meaning, s.changedSince])).toEqual([['authored', true], ['reviewed', false]]);
    expect(after.changedSinceSigned).toBe(true);
  });

  it('answers StorageUnavailableError (503) while the journal is away', async () => {
    const away = new RecordService({ database: () => null, site, now: () => 0 });
    await expect(away.view(fx.record())).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(away.current(fx.record())).rejects.toBeInstanceOf(StorageUnavailableError);
  });
});

/**
 * Alarm-profile changes take effect audit first, then persisted, then applied; a step that fails stops the rest,
 * and a change that could not be persisted is audited as failed after its accepted record.
 */
import { describe, expect, it } from 'vitest';
import { commitProfileChange, confirmProfileProblem, type AlarmProfileChange, type ProfileChangeDeps } from '../../../src/alarms/profileChanges.js';
import { defaultProfile } from '../../../src/alarms/rules.js';
import type { AuditEntry, AuditRecord } from '../../../src/audit/auditLog.js';

const silent = { info() {}, error() {} };

function harness(fail: { audit?: Error; save?: Error } = {}) {
  const steps: string[] = [];
  const entries: AuditEntry[] = [];
  let problem: string | null = 'alarm-profile.json: not JSON';
  const deps: ProfileChangeDeps = {
    audit: {
      append(e: AuditEntry): AuditRecord {
        steps.push(`audit:${e.outcome}`);
        if (fail.audit) throw fail.audit;
        entries.push(e);
        return { id: entries.length, at: 0, user: e.user, role: e.role, device: e.device ?? null, session: null, action: e.action, detail: e.detail ?? {}, outcome: e.outcome, prevHash: '', hash: '' };
      },
    },
    store: {
      file: '/data/alarm-profile.json',
      save() { steps.push('save'); if (fail.save) throw fail.save; },
      get loadProblem() { return problem; },
      confirm() { steps.push('confirm'); const p = problem; problem = null; return p; },
    },
    engine: { updateProfile() { steps.push('apply'); } },
  };
  return { deps, steps, entries };
}

const change: AlarmProfileChange = {
  actor: { user: 'eng', role: 'engineer' }, device: 'MSC-0001', action: 'alarm.limit.change',
  detail: { rule: 'PV_HIGH', old: { limit: 300 }, new: { limit: 280 }, reason: 'protocol' }, reason: 'protocol',
  document: {}, profile: defaultProfile,
};

describe('commitProfileChange', () => {
  it('audits, then persists, then applies', () => {
    const h = harness();
    const out = commitProfileChange(h.deps, change, silent);
    expect(out).toMatchObject({ ok: true, record: { id: 1, action: 'alarm.limit.change', outcome: 'accepted' } });
    expect(h.steps).toEqual(['audit:accepted', 'save', 'apply']);
  });

  it('changes nothing when the audit trail cannot be written (too_large for a detail it refuses as too long)', () => {
    const down = harness({ audit: new Error('SQLITE_IOERR') });
    expect(commitProfileChange(down.deps, change, silent)).toMatchObject({ ok: false, refusal: 'audit_unavailable' });
    expect(down.steps).toEqual(['audit:accepted']);
    const big = harness({ audit: new RangeError('audit detail over 65536 bytes') });
    expect(commitProfileChange(big.deps, change, silent)).toMatchObject({ ok: false, refusal: 'too_large', message: expect.stringContaining('over 65536') });
    expect(big.steps).toEqual(['audit:accepted']);
  });

  it('does not apply a change it cannot persist, and audits it as failed', () => {
    const h = harness({ save: new Error('EACCES') });
    const out = commitProfileChange(h.deps, change, silent);
    expect(out).toMatchObject({ ok: false, refusal: 'not_persisted', message: expect.stringContaining('/data/alarm-profile.json (EACCES)') });
    expect(h.steps).toEqual(['audit:accepted', 'save', 'audit:failed']);
    expect(h.entries[1]).toMatchObject({ outcome: 'failed', detail: { auditId: 1, error: 'EACCES' } });
  });
});

describe('confirmProfileProblem', () => {
  it('audits the confirmation before it takes effect, and refuses when there is nothing to confirm', () => {
    const h = harness();
    expect(confirmProfileProblem(h.deps, change.actor, 'checked', silent)).toMatchObject({ ok: true, confirmed: 'alarm-profile.json: not JSON' });
    expect(h.steps).toEqual(['audit:accepted', 'confirm']);
    expect(confirmProfileProblem(h.deps, change.actor, 'checked', silent)).toMatchObject({ ok: false, refusal: 'nothing_to_confirm' });
  });

  it('confirms nothing without the audit trail', () => {
    const h = harness({ audit: new Error('disk') });
    expect(confirmProfileProblem(h.deps, change.actor, 'checked', silent)).toMatchObject({ ok: false, refusal: 'audit_unavailable' });
    expect(h.steps).toEqual(['audit:accepted']);
  });
});

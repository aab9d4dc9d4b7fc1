import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { canonicalJson, GENESIS_HASH } from '../../../src/audit/canonical.js';
import { auditCommand } from '../../../src/cli/audit.js';

let dir: string;
let db: Database.Database;
let clock: number;
let log: AuditLog;

function open(): void {
  db = new Database(join(dir, 'journal.sqlite'));
  db.pragma('journal_mode = WAL');
  log = new AuditLog({ db, now: () => clock });
  log.start();
}

function fill(n: number): void {
  for (let i = 1; i <= n; i++) {
    clock += 1000;
    log.append({
      user: 'alice', role: 'operator', device: i % 2 ? 'MSC-0001' : 'MSC-0002', session: 'S-1',
      action: 'command.requested', outcome: 'accepted', detail: { cmdId: `c${i}`, verb: 'SET', args: ['QB', 150 + i] },
    });
  }
}

/** Tampering needs the append-only triggers out of the way, as a real attacker with file access would. */
function tamper(sql: string, ...params: unknown[]): void {
  db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
  db.prepare(sql).run(...params);
}

function sink(): { stream: Writable; text: () => string } {
  let buf = '';
  return { stream: new Writable({ write(c, _e, cb) { buf += String(c); cb(); } }), text: () => buf };
}

async function cliVerify(): Promise<{ code: number; out: string }> {
  const out = sink();
  const err = sink();
  const code = await auditCommand(['verify', '--data-dir', dir], {}, { out: out.stream, err: err.stream });
  return { code, out: out.text() + err.text() };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'msc-audit-'));
  clock = Date.UTC(2026, 0, 5, 10, 0, 0);
  open();
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('AuditLog chain', () => {
  it('links each record to the previous one, from the genesis hash', () => {
    const a = log.append({ user: 'alice', role: 'operator', action: 'annotation.add', outcome: 'done', detail: { b: 1, a: 2 } });
    const b = log.append({ user: 'bob', role: 'engineer', device: 'MSC-0001', action: 'alarm.ack', outcome: 'ACKED' });
    expect(a.id).toBe(1);
    expect(a.prevHash).toBe(GENESIS_HASH);
    expect(b.id).toBe(2);
    expect(b.prevHash).toBe(a.hash);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.hash).not.toBe(b.hash);
    expect(a.at).toBe(clock);
    expect(log.verify()).toEqual({ ok: true, count: 2, headId: 2, headHash: b.hash });
  });

  it('serialises detail canonically (key order does not change the hash input)', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
  });

  it('is append-only inside the database', () => {
    fill(3);
    expect(() => db.prepare("UPDATE audit SET outcome = 'x' WHERE id = 2").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit WHERE id = 3').run()).toThrow(/append-only/);
    expect(log.verify().ok).toBe(true);
  });

  it('queries by time, device and page', () => {
    fill(10);
    const t0 = Date.UTC(2026, 0, 5, 10, 0, 0);
    expect(log.query({ from: t0 + 3000, to: t0 + 6000 }).map((r) => r.id)).toEqual([3, 4, 5, 6]);
    expect(log.query({ device: 'MSC-0002' }).map((r) => r.id)).toEqual([2, 4, 6, 8, 10]);
    expect(log.query({ afterId: 7, limit: 2 }).map((r) => r.id)).toEqual([8, 9]);
    expect(log.query({ limit: 1 })[0].detail).toEqual({ args: ['QB', 151], cmdId: 'c1', verb: 'SET' });
  });

  it('continues one chain across two handles on the same file (daemon and CLI)', () => {
    fill(2);
    const other = new Database(join(dir, 'journal.sqlite'));
    const second = new AuditLog({ db: other, now: () => clock });
    second.start();
    second.append({ user: 'cli:root', role: 'admin', action: 'token.add', outcome: 'done' });
    other.close();
    fill(1);
    expect(log.verify()).toMatchObject({ ok: true, count: 4 });
  });
});

describe('AuditLog on a journal that reopens its database', () => {
  it('continues the chain on the new handle (useDatabase)', () => {
    fill(2);
    const reopened = new Database(join(dir, 'journal.sqlite'));
    db.close();
    log.useDatabase(reopened);
    db = reopened;
    fill(2);
    expect(log.verify()).toMatchObject({ ok: true, count: 4 });
    expect(log.query().map((r) => r.id)).toEqual([1, 2, 3, 4]);
  });
});

describe('AuditLog.verify and `audit verify`', () => {
  it('passes an intact trail (exit 0)', async () => {
    fill(5);
    const r = await cliVerify();
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/intact: 5 records/);
  });

  it('names an edited record', async () => {
    fill(5);
    tamper("UPDATE audit SET detail = ? WHERE id = 3", '{"args":["QB",300],"cmdId":"c3","verb":"SET"}');
    expect(log.verify()).toMatchObject({ ok: false, firstBrokenId: 3, reason: expect.stringMatching(/altered/) });
    const r = await cliVerify();
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/#3/);
  });

  it('names an edited user or time, not only detail', () => {
    fill(4);
    tamper("UPDATE audit SET user = 'mallory' WHERE id = 2");
    expect(log.verify()).toMatchObject({ ok: false, firstBrokenId: 2 });
  });

  it('names a deleted record', async () => {
    fill(5);
    tamper('DELETE FROM audit WHERE id = 2');
    expect(log.verify()).toMatchObject({ ok: false, firstBrokenId: 2, reason: expect.stringMatching(/missing/) });
    const r = await cliVerify();
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/#2/);
  });

  it('names a deleted record that was renumbered to hide the gap', () => {
    fill(5);
    tamper('DELETE FROM audit WHERE id = 2');
    db.prepare('UPDATE audit SET id = id - 1 WHERE id > 2').run();
    expect(log.verify()).toMatchObject({ ok: false, firstBrokenId: 2 });
  });

  it('names swapped records', async () => {
    fill(5);
    db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
    // Swap the contents of records 3 and 4, keeping the ids in place.
    db.exec(`UPDATE audit SET id = -3 WHERE id = 3; UPDATE audit SET id = 3 WHERE id = 4; UPDATE audit SET id = 4 WHERE id = -3;`);
    expect(log.verify()).toMatchObject({ ok: false, firstBrokenId: 3 });
    const r = await cliVerify();
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/#3/);
  });

  it('notices the last records cut off', () => {
    fill(5);
    tamper('DELETE FROM audit WHERE id >= 4');
    expect(log.verify()).toMatchObject({ ok: false, firstBrokenId: 4, reason: expect.stringMatching(/missing at the end/) });
  });

  it('notices a forged chain rebuilt with a new hash only in the last record', () => {
    fill(3);
    tamper("UPDATE audit SET hash = ? WHERE id = 3", 'f'.repeat(64));
    expect(log.verify()).toMatchObject({ ok: false, firstBrokenId: 3 });
  });

  it('exits 2 without a journal and on usage errors', async () => {
    const out = sink();
    expect(await auditCommand(['verify', '--data-dir', join(dir, 'nope')], {}, { out: out.stream, err: out.stream })).toBe(2);
    expect(out.text()).toMatch(/no journal/);
    expect(await auditCommand(['check'], {}, { out: out.stream, err: out.stream })).toBe(2);
  });
});

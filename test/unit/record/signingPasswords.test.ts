/**
 * Signing passwords: scrypt hashes with their salt and parameters, a 0600 file written atomically, the rules a
 * new password must meet, the audit record of a change (never the password or its hash), a change made by another
 * process (the CLI) seen without a restart, and a file that cannot be read accepting nobody.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/audit/auditLog.js';
import {
  hashSigningPassword, passwordProblem, SCRYPT_DEFAULTS, SigningPasswordStore, verifySigningPassword,
} from '../../../src/record/signingPasswords.js';

const ADMIN = { user: 'cli:root', role: 'admin' as const };
const FAST = { N: 2 ** 14 }; // the lowest cost the file reader accepts: keeps the tests quick
const PW = 'correct horse battery';

let dir: string;
let db: Database.Database;
let audit: AuditLog;
let clock: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'msc-signpw-'));
  db = new Database(':memory:');
  clock = Date.UTC(2026, 0, 5, 10, 0, 0);
  audit = new AuditLog({ db, now: () => clock });
  audit.start();
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const store = (recheckMs = 1000) => new SigningPasswordStore({ dataDir: dir, audit, now: () => clock, recheckMs, scrypt: FAST });

describe('scrypt hashes', () => {
  it('uses N=2^15 r=8 p=1 by default, a random 16-byte salt, and verifies only the same password', async () => {
    const h = await hashSigningPassword(PW);
    expect(h).toMatchObject({ N: SCRYPT_DEFAULTS.N, r: 8, p: 1, keyLen: 64 });
    expect(SCRYPT_DEFAULTS.N).toBe(2 ** 15);
    expect(Buffer.from(h.salt, 'base64')).toHaveLength(16);
    expect(Buffer.from(h.hash, 'base64')).toHaveLength(64);
    const again = await hashSigningPassword(PW);
    expect(again.salt).not.toBe(h.salt);
    expect(again.hash).not.toBe(h.hash);
    expect(await verifySigningPassword(PW, h)).toBe(true);
    expect(await verifySigningPassword(PW + ' ', h)).toBe(false);
    expect(await verifySigningPassword('correct horse batterY', h)).toBe(false);
    expect(await verifySigningPassword('x'.repeat(10_000), h)).toBe(false);
  });

  it('does not hold the event loop while hashing', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await Promise.all([hashSigningPassword(PW), hashSigningPassword(PW), hashSigningPassword(PW)]);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
  });
});

describe('new passwords', () => {
  it('refuses short, blank-edged, control-character and one-character-class passwords', () => {
    expect(passwordProblem('short')).toMatch(/at least 10/);
    expect(passwordProblem('123456789')).toMatch(/at least 10/);
    expect(passwordProblem(' leading spaces')).toMatch(/spaces/);
    expect(passwordProblem('tab\there-and-there')).toMatch(/control/);
    expect(passwordProblem('aaaaaaaaaaaaaa')).toMatch(/different/);
    expect(passwordProblem('x'.repeat(300))).toMatch(/at most/);
    expect(passwordProblem(PW)).toBeNull();
  });

  it('refuses an API token, the user name, a bad name and an empty printed name; nothing is written', async () => {
    const s = store();
    const token = 'msc_' + 'a1b2c3d4'.repeat(5);
    const isToken = (x: string) => x === token;
    expect(await s.set('nurse1', 'Ann Nurse', token, ADMIN, isToken)).toMatchObject({ ok: false, reason: expect.stringMatching(/API token/) });
    expect(await s.set('nurse1', 'Ann Nurse', 'nurse1-secret-99', ADMIN)).toMatchObject({ ok: false, reason: expect.stringMatching(/user name/) });
    expect(await s.set('bad name', 'Ann Nurse', PW, ADMIN)).toMatchObject({ ok: false, reason: expect.stringMatching(/invalid user name/) });
    expect(await s.set('nurse1', '  ', PW, ADMIN)).toMatchObject({ ok: false, reason: expect.stringMatching(/printed name/) });
    expect(await s.set('nurse1', 'Ann\u202ENurse', PW, ADMIN)).toMatchObject({ ok: false, reason: expect.stringMatching(/bidi/) });
    expect(await s.set('nurse1', 'Ann Nurse', 'short', ADMIN)).toMatchObject({ ok: false, reason: expect.stringMatching(/at least 10/) });
    expect(() => statSync(s.file)).toThrow();
    expect(audit.query()).toHaveLength(0);
  });
});

describe('the store', () => {
  it('writes the hash and parameters (never the password) to a 0600 file, and audits name and printed name only', async () => {
    const s = store();
    const r = await s.set('nurse1', ' Ann Nurse ', PW, ADMIN);
    expect(r).toMatchObject({ ok: true, value: { name: 'nurse1', printedName: 'Ann Nurse', setBy: 'cli:root', setAt: new Date(clock).toISOString() } });
    expect(statSync(s.file).mode & 0o777).toBe(0o600);
    const text = readFileSync(s.file, 'utf8');
    expect(text).not.toContain(PW);
    const file = JSON.parse(text);
    expect(file.users[0]).toMatchObject({ name: 'nurse1', printedName: 'Ann Nurse', scrypt: { N: 2 ** 14, r: 8, p: 1, keyLen: 64 } });
    const recs = audit.query();
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ action: 'user.signing_password', outcome: 'set', user: 'cli:root', role: 'admin', detail: { name: 'nurse1', printedName: 'Ann Nurse' } });
    expect(JSON.stringify(recs[0])).not.toContain(file.users[0].scrypt.hash);
    expect(JSON.stringify(recs[0])).not.toContain(PW);
    expect(await s.verify('nurse1', PW)).toBe('ok');
    expect(await s.verify('nurse1', 'wrong password!')).toBe('wrong');
    expect(await s.verify('nobody', PW)).toBe('none');
    expect(s.get('nurse1')).toMatchObject({ printedName: 'Ann Nurse' });
    expect(s.list().map((u) => u.name)).toEqual(['nurse1']);
  });

  it('replaces a password: the old one stops working', async () => {
    const s = store();
    await s.set('nurse1', 'Ann Nurse', PW, ADMIN);
    await s.set('nurse1', 'Ann B. Nurse', 'a new pass phrase', ADMIN);
    expect(await s.verify('nurse1', PW)).toBe('wrong');
    expect(await s.verify('nurse1', 'a new pass phrase')).toBe('ok');
    expect(s.list()).toHaveLength(1);
    expect(s.get('nurse1')?.printedName).toBe('Ann B. Nurse');
    expect(audit.query().map((r) => r.detail)).toEqual([{ name: 'nurse1', printedName: 'Ann Nurse' }, { name: 'nurse1', printedName: 'Ann B. Nurse' }]);
  });

  it('sees a password set by another process (the CLI) once recheckMs has passed, without a restart', async () => {
    const daemon = store(1000);
    daemon.start();
    expect(await daemon.verify('nurse1', PW)).toBe('none');
    await store().set('nurse1', 'Ann Nurse', PW, ADMIN);
    expect(await daemon.verify('nurse1', PW)).toBe('none'); // checked less than a second ago
    clock += 1001;
    expect(await daemon.verify('nurse1', PW)).toBe('ok');
  });

  it('undoes the change when it cannot be audited', async () => {
    const s = new SigningPasswordStore({ dataDir: dir, audit: { append: () => { throw new Error('disk full'); } }, scrypt: FAST });
    await expect(s.set('nurse1', 'Ann Nurse', PW, ADMIN)).rejects.toThrow(/disk full/);
    expect(() => statSync(s.file)).toThrow();
    const ok = store();
    await ok.set('nurse1', 'Ann Nurse', PW, ADMIN);
    const failing = new SigningPasswordStore({ dataDir: dir, audit: { append: () => { throw new Error('disk full'); } }, scrypt: FAST });
    await expect(failing.set('nurse1', 'Ann Nurse', 'another pass phrase', ADMIN)).rejects.toThrow(/disk full/);
    expect(await store().verify('nurse1', PW)).toBe('ok');
  });

  it('accepts nobody from a corrupt or weakened file, and refuses to overwrite it', async () => {
    const s = store();
    await s.set('nurse1', 'Ann Nurse', PW, ADMIN);
    const good = readFileSync(s.file, 'utf8');
    writeFileSync(s.file, '{ not json');
    const reader = store();
    reader.start();
    expect(reader.loadError).toMatch(/JSON/);
    expect(await reader.verify('nurse1', PW)).toBe('none');
    expect(await reader.set('nurse2', 'Bob Nurse', PW, ADMIN)).toMatchObject({ ok: false, reason: expect.stringMatching(/unreadable/) });
    const weak = JSON.parse(good);
    weak.users[0].scrypt.N = 1024;
    writeFileSync(s.file, JSON.stringify(weak));
    const again = store();
    again.start();
    expect(again.loadError).toMatch(/N/);
    expect(await again.verify('nurse1', PW)).toBe('none');
  });
});

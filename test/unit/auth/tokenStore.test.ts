import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { bearerToken, digestsEqual, generateToken, hashToken } from '../../../src/auth/tokenHash.js';
import { AuthConfigSchema, TokenStore } from '../../../src/auth/tokenStore.js';
import { tokensCommand } from '../../../src/cli/tokens.js';

const admin = { user: 'root', role: 'admin' as const };
let dir: string;
let clock: number;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'msc-tokens-'));
  clock = 1_000_000;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function store(extra: Partial<ConstructorParameters<typeof TokenStore>[0]> = {}): TokenStore {
  const s = new TokenStore({ dataDir: dir, now: () => clock, ...extra });
  s.start();
  return s;
}

describe('token hashing', () => {
  it('makes 32-byte base64url tokens and hex SHA-256 digests', () => {
    const t = generateToken();
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(t, 'base64url')).toHaveLength(32);
    expect(generateToken()).not.toBe(t);
    // FIPS 180-4 test vector.
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('compares digests in constant time, refusing different lengths', () => {
    const a = Buffer.from(hashToken('a'), 'hex');
    expect(digestsEqual(a, Buffer.from(hashToken('a'), 'hex'))).toBe(true);
    expect(digestsEqual(a, Buffer.from(hashToken('b'), 'hex'))).toBe(false);
    expect(digestsEqual(a, a.subarray(0, 16))).toBe(false);
  });

  it('parses Bearer headers strictly', () => {
    expect(bearerToken('Bearer abc_-D')).toBe('abc_-D');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken('Bearer')).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
    expect(bearerToken(['Bearer a'])).toBeNull();
    expect(bearerToken(`Bearer ${'a'.repeat(600)}`)).toBeNull();
  });
});

describe('TokenStore', () => {
  it('adds a token, stores only its hash (mode 0600) and authenticates it', () => {
    const s = store();
    const res = s.add('alice', 'operator', admin);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    const file = readFileSync(s.file, 'utf8');
    expect(file).not.toContain(res.value.token);
    expect(file).toContain(hashToken(res.value.token));
    expect(statSync(s.file).mode & 0o777).toBe(0o600);
    expect(s.authenticate(res.value.token)).toEqual({ user: 'alice', role: 'operator' });
    expect(s.authenticate(res.value.token + 'x')).toBeNull();
    expect(s.authenticate('')).toBeNull();
    expect(s.list()).toEqual([expect.objectContaining({ name: 'alice', role: 'operator', source: 'file', createdBy: 'root' })]);
  });

  it('refuses bad names, bad roles and duplicates', () => {
    const s = store();
    expect(s.add('bad name', 'viewer', admin)).toMatchObject({ ok: false });
    expect(s.add('bob', 'superuser', admin)).toMatchObject({ ok: false, reason: expect.stringMatching(/role/) });
    expect(s.add('bob', 'viewer', admin).ok).toBe(true);
    expect(s.add('bob', 'admin', admin)).toMatchObject({ ok: false, reason: expect.stringMatching(/exists/) });
  });

  it('revokes a token; a principal from it is no longer valid, even if the name is re-added', () => {
    const s = store();
    const first = s.add('carol', 'engineer', admin);
    if (!first.ok) throw new Error(first.reason);
    const p = s.authenticate(first.value.token)!;
    expect(s.stillValid(p)).toBe(true);
    expect(s.revoke('carol', admin).ok).toBe(true);
    expect(s.authenticate(first.value.token)).toBeNull();
    expect(s.stillValid(p)).toBe(false);
    expect(s.add('carol', 'engineer', admin).ok).toBe(true);
    expect(s.stillValid(p)).toBe(false);
    expect(s.revoke('nobody', admin)).toMatchObject({ ok: false });
  });

  it('accepts tokens provisioned (hashed) in the config, which cannot be revoked from the CLI', () => {
    const token = generateToken();
    const auth = AuthConfigSchema.parse({ tokens: [{ name: 'wardpc', role: 'viewer', sha256: hashToken(token).toUpperCase() }] });
    const s = store({ provisioned: auth.tokens });
    expect(s.authenticate(token)).toEqual({ user: 'wardpc', role: 'viewer' });
    expect(s.revoke('wardpc', admin)).toMatchObject({ ok: false, reason: expect.stringMatching(/config/) });
    expect(s.add('wardpc', 'admin', admin)).toMatchObject({ ok: false });
    expect(AuthConfigSchema.safeParse({ tokens: [{ name: 'x', role: 'viewer', sha256: 'abc' }] }).success).toBe(false);
  });

  it('sees a change made by another process after the recheck interval', () => {
    const daemon = store({ recheckMs: 1000 });
    const cli = store();
    const res = cli.add('dave', 'operator', admin);
    if (!res.ok) throw new Error(res.reason);
    // Within the recheck interval the daemon may still use what it loaded…
    clock += 1001;
    expect(daemon.authenticate(res.value.token)).toEqual({ user: 'dave', role: 'operator' });
    cli.revoke('dave', admin);
    clock += 1001;
    expect(daemon.authenticate(res.value.token)).toBeNull();
  });

  it('fails closed on a corrupt tokens.json and refuses to overwrite it', () => {
    const token = generateToken();
    writeFileSync(join(dir, 'tokens.json'), '{"version":1,"tokens":[{"name":"x"');
    const s = store({ provisioned: [{ name: 'cfg', role: 'admin', sha256: hashToken(token) }] });
    expect(s.loadError).toBeTruthy();
    expect(s.authenticate(token)).toEqual({ user: 'cfg', role: 'admin' });
    expect(s.add('eve', 'viewer', admin)).toMatchObject({ ok: false, reason: expect.stringMatching(/unreadable/) });
  });

  it('audits every change, and undoes a change that cannot be audited', () => {
    const db = new Database(join(dir, 'journal.sqlite'));
    const audit = new AuditLog({ db });
    audit.start();
    const s = store({ audit });
    const added = s.add('frank', 'viewer', admin);
    if (!added.ok) throw new Error(added.reason);
    s.revoke('frank', admin);
    expect(audit.query().map((r) => [r.action, r.user, r.role, r.detail.name])).toEqual([
      ['token.add', 'root', 'admin', 'frank'],
      ['token.revoke', 'root', 'admin', 'frank'],
    ]);
    expect(JSON.stringify(audit.query())).not.toContain(added.value.token);
    db.close();
    expect(() => s.add('gina', 'viewer', admin)).toThrow();
    expect(s.list().map((t) => t.name)).not.toContain('gina');
  });
});

describe('`msc-gateway tokens`', () => {
  function io() {
    let out = '';
    let err = '';
    return {
      io: {
        out: new Writable({ write(c, _e, cb) { out += String(c); cb(); } }),
        err: new Writable({ write(c, _e, cb) { err += String(c); cb(); } }),
      },
      out: () => out,
      err: () => err,
    };
  }

  it('adds (token alone on stdout), lists and revokes, auditing as the OS user', async () => {
    const a = io();
    expect(await tokensCommand(['add', '--name', 'nurse1', '--role', 'operator', '--data-dir', dir], {}, a.io)).toBe(0);
    const token = a.out().trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.err()).toMatch(/shown once/);
    expect(store().authenticate(token)).toEqual({ user: 'nurse1', role: 'operator' });

    const l = io();
    expect(await tokensCommand(['list', '--data-dir', dir], {}, l.io)).toBe(0);
    expect(l.out()).toMatch(/nurse1\s+operator\s+file/);
    expect(l.out()).not.toContain(token);

    const r = io();
    expect(await tokensCommand(['revoke', 'nurse1'], { MSC_DATA_DIR: dir }, r.io)).toBe(0);
    expect(store().authenticate(token)).toBeNull();

    const db = new Database(join(dir, 'journal.sqlite'), { readonly: true });
    const audit = new AuditLog({ db, readonly: true });
    expect(audit.query().map((x) => [x.action, x.role, x.user.startsWith('cli:')])).toEqual([
      ['token.add', 'admin', true], ['token.revoke', 'admin', true],
    ]);
    expect(audit.verify().ok).toBe(true);
    db.close();
  });

  it('exits 2 on usage errors and 1 on refused changes', async () => {
    const x = io();
    expect(await tokensCommand(['add', '--name', 'x'], {}, x.io)).toBe(2);
    expect(await tokensCommand(['frobnicate'], {}, x.io)).toBe(2);
    expect(await tokensCommand(['revoke', 'ghost', '--data-dir', dir], {}, x.io)).toBe(1);
    expect(await tokensCommand(['add', '--name', 'x', '--role', 'root', '--data-dir', dir], {}, x.io)).toBe(1);
  });
});

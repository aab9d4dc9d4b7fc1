/**
 * `msc-gateway users`: the signing password comes from stdin (one line from a pipe; asked twice without echo on a
 * terminal), never from the arguments; the change is audited in the journal's trail; `list` shows no hashes.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TokenStore } from '../../../src/auth/tokenStore.js';
import { usersCommand, type PasswordInput } from '../../../src/cli/users.js';
import { SigningPasswordStore } from '../../../src/record/signingPasswords.js';

const PW = 'correct horse battery';
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'msc-users-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function sink(): { stream: Writable; text: () => string } {
  let buf = '';
  return { stream: new Writable({ write(c, _e, cb) { buf += String(c); cb(); } }), text: () => buf };
}

/** Runs the command with `typed` on stdin: a pipe, or a terminal (raw mode recorded) when `tty`. */
async function run(args: string[], typed: string, tty = false) {
  const out = sink();
  const err = sink();
  const input = new PassThrough() as PassThrough & PasswordInput;
  const raw: boolean[] = [];
  if (tty) {
    input.isTTY = true;
    input.setRawMode = (mode: boolean) => { raw.push(mode); return input; };
  }
  const done = usersCommand([...args, '--data-dir', dir], {}, { out: out.stream, err: err.stream, input });
  if (tty) {
    // A person types each key separately; the prompts come first.
    for (const ch of typed) input.write(ch);
  } else {
    input.end(typed);
  }
  const code = await done;
  return { code, out: out.text(), err: err.text(), raw };
}

const auditRows = () => {
  const db = new Database(join(dir, 'journal.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT user, role, action, outcome, detail FROM audit ORDER BY id').all() as Array<Record<string, string>>;
  } finally {
    db.close();
  }
};

describe('msc-gateway users', () => {
  it('sets a password from a pipe (first line), audited as the OS user with role admin, and lists without hashes', async () => {
    const r = await run(['set-password', 'nurse1', '--printed-name', 'Ann Nurse'], `${PW}\nignored second line\n`);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe('signing password set for nurse1 (Ann Nurse)\n');
    expect(await new SigningPasswordStore({ dataDir: dir }).verify('nurse1', PW)).toBe('ok');
    const rows = auditRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ role: 'admin', action: 'user.signing_password', outcome: 'set' });
    expect(rows[0].user).toMatch(/^cli:/);
    expect(JSON.parse(rows[0].detail)).toEqual({ name: 'nurse1', printedName: 'Ann Nurse' });

    const list = await run(['list'], '');
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^NAME\s+PRINTED NAME\s+SET\s+SET BY\n/);
    expect(list.out).toMatch(/^nurse1\s+Ann Nurse\s+\d{4}-\d\d-\d\dT/m);
    const hash = JSON.parse(readFileSync(join(dir, 'signing-passwords.json'), 'utf8')).users[0].scrypt.hash;
    expect(list.out).not.toContain(hash);
    const json = await run(['list', '--json'], '');
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ name: 'nurse1', printedName: 'Ann Nurse' })]);
    expect(json.out).not.toContain(hash);
  });

  it('asks twice without echo on a terminal, and changes nothing when the two differ', async () => {
    const differ = await run(['set-password', 'nurse1', '--printed-name', 'Ann Nurse'], `${PW}\r${PW}x\r`, true);
    expect(differ.code).toBe(1);
    expect(differ.err).toMatch(/signing password for nurse1: \nagain: \n.*differ/s);
    expect(differ.err + differ.out).not.toContain(PW);
    expect(differ.raw).toEqual([true, false, true, false]);
    expect(new SigningPasswordStore({ dataDir: dir }).list()).toEqual([]);

    const same = await run(['set-password', 'nurse1', '--printed-name', 'Ann Nurse'], `${PW}x\u007f\r${PW}\r`, true);
    expect(same.code, same.err).toBe(0);
    expect(same.err + same.out).not.toContain(PW);
    expect(await new SigningPasswordStore({ dataDir: dir }).verify('nurse1', PW)).toBe('ok');

    // Both answers pasted at once (one chunk): the second is not lost.
    const out = sink();
    const input = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => input }) as PassThrough & PasswordInput;
    const pasted = usersCommand(['set-password', 'nurse1', '--printed-name', 'Ann Nurse', '--data-dir', dir], {}, { out: out.stream, err: sink().stream, input });
    input.write('pasted pass phrase\r\npasted pass phrase\r\n');
    expect(await pasted).toBe(0);
    expect(await new SigningPasswordStore({ dataDir: dir }).verify('nurse1', 'pasted pass phrase')).toBe('ok');
  });

  it('refuses bad names, a missing printed name, a password given as an argument, a short one and an API token', async () => {
    expect((await run(['set-password', 'bad name', '--printed-name', 'X Y'], `${PW}\n`)).code).toBe(2);
    expect((await run(['set-password', 'nurse1'], `${PW}\n`)).code).toBe(2);
    const argv = await run(['set-password', 'nurse1', PW, '--printed-name', 'Ann Nurse'], '');
    expect(argv.code).toBe(2);
    expect(argv.err).toMatch(/stdin, never as an argument/);
    const short = await run(['set-password', 'nurse1', '--printed-name', 'Ann Nurse'], 'short\n');
    expect(short).toMatchObject({ code: 1, err: expect.stringMatching(/at least 10 characters; nothing was changed/) });
    expect((await run(['set-password', 'nurse1', '--printed-name', 'Ann Nurse'], '')).err).toMatch(/no password on stdin/);

    const tokens = new TokenStore({ dataDir: dir });
    const made = tokens.add('nurse1', 'operator', { user: 'test', role: 'admin' });
    if (!made.ok) throw new Error(made.reason);
    const token = await run(['set-password', 'nurse1', '--printed-name', 'Ann Nurse'], `${made.value.token}\n`);
    expect(token).toMatchObject({ code: 1, err: expect.stringMatching(/must not be an API token/) });
    expect(new SigningPasswordStore({ dataDir: dir }).list()).toEqual([]);
    expect((await run(['frobnicate'], '')).code).toBe(2);
  });
});

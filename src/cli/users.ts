/**
 * `msc-gateway users set-password NAME --printed-name "Full Name" | list [--json] [--data-dir DIR] [--config FILE]`.
 *
 * A user's signing password (the second component of an electronic signature, beside the API token) is read from
 * stdin, never from the command line: on a terminal it is asked twice without echo, from a pipe it is the first
 * line. Only its scrypt hash is stored (`<dataDir>/signing-passwords.json`, 0600). The change is appended to the
 * audit trail (`user.signing_password`, detail: name and printed name) as the operating-system user who ran the
 * command, with role admin, like `msc-gateway tokens`. A running daemon sees the change within a second.
 */
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { AuditLog } from '../audit/auditLog.js';
import { TOKEN_NAME_RE, TokenStore, type ProvisionedToken } from '../auth/tokenStore.js';
import { SIGNING_PASSWORD_MIN_CHARS, SigningPasswordStore } from '../record/signingPasswords.js';
import { cliActor, openAuditJournal, provisionedFrom } from './adminShared.js';
import { resolveDataDir, type CliIo } from './audit.js';

export const USERS_USAGE = `Usage: msc-gateway users <command> [--data-dir DIR] [--config FILE]

Commands:
  set-password NAME --printed-name "Full Name"
                     set NAME's signing password (asked twice on a terminal, or one line on stdin);
                     NAME is the user's API token name; at least ${SIGNING_PASSWORD_MIN_CHARS} characters, not the token
  list [--json]      users with a signing password: names, printed names, when set (never the hashes)
`;

/** Where the password comes from: a terminal (asked without echo) or a pipe. */
export interface PasswordInput extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

export interface UsersIo extends CliIo {
  input: PasswordInput;
}

const STDIO: UsersIo = { out: process.stdout, err: process.stderr, input: process.stdin };



/** The first line of a piped stdin (without its line break), or null at end of input without one. */
export function readLine(input: NodeJS.ReadableStream): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (value: string | null) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      const nl = text.indexOf('\n');
      if (nl >= 0) done(text.slice(0, nl).replace(/\r$/, ''));
      else if (text.length > 4096) done(text); // no line break in 4 KiB: too long to be a password; refused later
    };
    const onEnd = () => done(text.length > 0 ? text.replace(/\r$/, '') : null);
    const onError = (err: Error) => {
      input.off('data', onData);
      input.off('end', onEnd);
      reject(err);
    };
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
}

/** One line typed on a terminal without echo; null on Ctrl-C or Ctrl-D. */
export function readHidden(input: PasswordInput, prompt: string, out: NodeJS.WritableStream): Promise<string | null> {
  out.write(prompt);
  return new Promise((resolve) => {
    let text = '';
    input.setRawMode?.(true);
    const finish = (value: string | null) => {
      input.off('data', onData);
      input.setRawMode?.(false);
      input.pause();
      out.write('\n');
      resolve(value);
    };
    const onData = (chunk: Buffer | string) => {
      const chars = [...chunk.toString()];
      for (let i = 0; i < chars.length; i++) {
        const ch = chars[i];
        if (ch === '\r' || ch === '\n') {
          // A pasted "password<Enter>password<Enter>" arrives in one chunk: the rest is the next answer's.
          const rest = chars.slice(i + 1).join('').replace(/^\n/, '');
          finish(text);
          if (rest) input.unshift(Buffer.from(rest));
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') return finish(null);
        if (ch === '\u007f' || ch === '\b') text = [...text].slice(0, -1).join('');
        else text += ch;
      }
    };
    input.on('data', onData);
    input.resume();
  });
}

export async function usersCommand(argv: string[], env: NodeJS.ProcessEnv, io: UsersIo = STDIO): Promise<number> {
  let values: { 'printed-name'?: string; json?: boolean; 'data-dir'?: string; config?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        'printed-name': { type: 'string' }, json: { type: 'boolean' },
        'data-dir': { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.err.write(`msc-gateway users: ${(err as Error).message}\n\n${USERS_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out.write(USERS_USAGE);
    return 0;
  }
  const [command, ...rest] = positionals;
  const usage = (why: string) => {
    io.err.write(`msc-gateway users: ${why}\n\n${USERS_USAGE}`);
    return 2;
  };
  if (command === 'set-password') {
    if (rest.length !== 1) return usage('set-password needs the user NAME (and the password on stdin, never as an argument)');
    if (!TOKEN_NAME_RE.test(rest[0])) return usage(`invalid user name ${JSON.stringify(rest[0])}: a token name, 1-64 of [A-Za-z0-9._@-]`);
    if (values['printed-name'] === undefined) return usage('set-password needs --printed-name "Full Name" (printed with each signature)');
  } else if (command === 'list') {
    if (rest.length > 0) return usage('list takes no arguments');
  } else {
    return usage(command ? `unknown command ${command}` : 'a command is required');
  }

  let dataDir: string;
  let provisioned: ProvisionedToken[];
  try {
    dataDir = resolveDataDir(values, env);
    provisioned = provisionedFrom(values.config);
  } catch (err) {
    return usage((err as Error).message);
  }

  if (command === 'list') {
    const store = new SigningPasswordStore({ dataDir });
    const users = store.list();
    if (store.loadError) {
      io.err.write(`msc-gateway users: ${store.file} is unreadable: ${store.loadError}\n`);
      return 1;
    }
    if (values.json) {
      io.out.write(JSON.stringify(users, null, 2) + '\n');
    } else {
      io.out.write(`${'NAME'.padEnd(24)} ${'PRINTED NAME'.padEnd(32)} ${'SET'.padEnd(25)} SET BY\n`);
      for (const u of users) io.out.write(`${u.name.padEnd(24)} ${u.printedName.padEnd(32)} ${u.setAt.padEnd(25)} ${u.setBy}\n`);
    }
    return 0;
  }

  const name = rest[0];
  const printedName = values['printed-name']!;
  const tokens = new TokenStore({ dataDir, provisioned });
  if (!tokens.list().some((t) => t.name === name)) {
    io.err.write(`msc-gateway users: note: there is no API token named ${name} (yet); the password is used once a token of that name signs\n`);
  }

  let password: string | null;
  if (io.input.isTTY) {
    password = await readHidden(io.input, `signing password for ${name}: `, io.err);
    if (password === null) return 1;
    const again = await readHidden(io.input, 'again: ', io.err);
    if (again === null) return 1;
    if (again !== password) {
      io.err.write('msc-gateway users: the two passwords differ; nothing was changed\n');
      return 1;
    }
  } else {
    password = await readLine(io.input);
    if (password === null) {
      io.err.write('msc-gateway users: no password on stdin (one line); nothing was changed\n');
      return 1;
    }
  }

  let db: Database.Database;
  try {
    db = openAuditJournal(dataDir);
  } catch (err) {
    io.err.write(`msc-gateway users: cannot open the journal for the audit trail: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const audit = new AuditLog({ db });
    audit.start();
    const store = new SigningPasswordStore({ dataDir, audit });
    const res = await store.set(name, printedName, password, cliActor(env), (s) => tokens.authenticate(s) !== null);
    if (!res.ok) {
      io.err.write(`msc-gateway users: ${res.reason}; nothing was changed\n`);
      return 1;
    }
    io.out.write(`signing password set for ${res.value.name} (${res.value.printedName})\n`);
    return 0;
  } catch (err) {
    io.err.write(`msc-gateway users: ${(err as Error).message}\n`);
    return 1;
  } finally {
    db.close();
  }
}

/**
 * Signing passwords (21 CFR 11.200(a)(1)): the second component of an electronic signature, beside the API token
 * that identifies the user. `<dataDir>/signing-passwords.json` (written atomically, mode 0600) holds per user
 * (= API token name) the printed full name and an scrypt hash of the password with its salt and parameters; never
 * the password. Set by `msc-gateway users set-password` (audited `user.signing_password`); the daemon notices a
 * changed file within `recheckMs`, so a password set by the CLI works without a restart.
 *
 * scrypt runs in libuv's thread pool (the async API): checking a password never holds the event loop.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import type { AuditSink } from '../audit/auditLog.js';
import type { Principal } from '../auth/roles.js';
import { TOKEN_NAME_RE } from '../auth/tokenStore.js';
import type { Logger } from '../log.js';
import { WatchedFile } from '../util/watchedFile.js';

export const SIGNING_PASSWORD_MIN_CHARS = 10;
/** scrypt's cost grows with the input only slightly, but a bound keeps a request body from feeding it megabytes. */
export const SIGNING_PASSWORD_MAX_CHARS = 256;
export const PRINTED_NAME_MAX_CHARS = 128;

/** scrypt cost: N = 2^15, r = 8, p = 1 (about 32 MiB and tens of ms per check), 64-byte key. */
export const SCRYPT_DEFAULTS = { N: 2 ** 15, r: 8, p: 1, keyLen: 64 } as const;
/** Parameters below these are refused when reading the file: a hand-edited weak hash is not accepted. */
const SCRYPT_MIN = { N: 2 ** 14, r: 8, p: 1, keyLen: 32 } as const;
const SCRYPT_MAX_N = 2 ** 20;

/** C0/C1 controls, DEL, bidi embeddings/overrides/isolates: never in a printed name or a password. */
const CONTROL = /[\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/u;

export interface ScryptHash {
  N: number;
  r: number;
  p: number;
  keyLen: number;
  /** base64 */
  salt: string;
  /** base64 */
  hash: string;
}

export interface SigningPasswordInfo {
  name: string;
  printedName: string;
  /** ISO UTC. */
  setAt: string;
  setBy: string;
}

export type PasswordCheck = 'ok' | 'wrong' | 'none';

export type StoreChange<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface SigningPasswordStoreOptions {
  dataDir: string;
  audit?: AuditSink | null;
  logger?: Logger | null;
  /** How often a lookup looks whether the file changed on disk, ms. */
  recheckMs?: number;
  now?: () => number;
  /** Cost parameters for new hashes (tests may lower N; never below the minimum the file reader accepts). */
  scrypt?: Partial<Pick<ScryptHash, 'N' | 'r' | 'p' | 'keyLen'>>;
}

const HashSchema = z.object({
  N: z.number().int().min(SCRYPT_MIN.N).max(SCRYPT_MAX_N).refine((n) => (n & (n - 1)) === 0, 'must be a power of 2'),
  r: z.number().int().min(SCRYPT_MIN.r).max(32),
  p: z.number().int().min(SCRYPT_MIN.p).max(16),
  keyLen: z.number().int().min(SCRYPT_MIN.keyLen).max(128),
  salt: z.base64().refine((s) => Buffer.from(s, 'base64').length >= 16, 'salt must be at least 16 bytes'),
  hash: z.base64(),
}).strict();

const FileSchema = z.object({
  version: z.literal(1),
  users: z.array(z.object({
    name: z.string().regex(TOKEN_NAME_RE),
    printedName: z.string().min(1).max(PRINTED_NAME_MAX_CHARS),
    setAt: z.string(),
    setBy: z.string(),
    scrypt: HashSchema,
  }).strict()),
}).strict();

type Entry = z.infer<typeof FileSchema>['users'][number];

function scryptAsync(password: string, salt: Buffer, keyLen: number, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyLen, o, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function scryptOptions(h: Pick<ScryptHash, 'N' | 'r' | 'p'>): ScryptOptions {
  // OpenSSL needs 128 * N * r bytes and then some; the default maxmem (32 MiB) is exactly N=2^15, r=8.
  return { N: h.N, r: h.r, p: h.p, maxmem: 256 * h.N * h.r + 16 * 1024 * 1024 };
}

/** A new salted scrypt hash of `password` (async: in the thread pool). */
export async function hashSigningPassword(password: string, params: Partial<Pick<ScryptHash, 'N' | 'r' | 'p' | 'keyLen'>> = {}): Promise<ScryptHash> {
  const p = { ...SCRYPT_DEFAULTS, ...params };
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, p.keyLen, scryptOptions(p));
  return { N: p.N, r: p.r, p: p.p, keyLen: p.keyLen, salt: salt.toString('base64'), hash: key.toString('base64') };
}

/** Whether `password` matches `stored`, compared in constant time. */
export async function verifySigningPassword(password: string, stored: ScryptHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  if (typeof password !== 'string' || password.length > SIGNING_PASSWORD_MAX_CHARS) {
    // Same work as a real check, so the answer time does not tell a too-long password from a wrong one.
    await scryptAsync('', Buffer.from(stored.salt, 'base64'), stored.keyLen, scryptOptions(stored));
    return false;
  }
  const key = await scryptAsync(password, Buffer.from(stored.salt, 'base64'), stored.keyLen, scryptOptions(stored));
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Why a new signing password is refused, or null. */
export function passwordProblem(password: string): string | null {
  if (typeof password !== 'string' || password.length < SIGNING_PASSWORD_MIN_CHARS) {
    return `a signing password has at least ${SIGNING_PASSWORD_MIN_CHARS} characters`;
  }
  if (password.length > SIGNING_PASSWORD_MAX_CHARS) return `a signing password has at most ${SIGNING_PASSWORD_MAX_CHARS} characters`;
  if (CONTROL.test(password)) return 'a signing password cannot contain control characters';
  if (password.trim() !== password) return 'a signing password cannot begin or end with spaces';
  if (new Set(password).size < 4) return 'a signing password needs at least 4 different characters';
  return null;
}

/** Why a printed name is refused, or null. */
export function printedNameProblem(printedName: string): string | null {
  if (typeof printedName !== 'string' || printedName.trim().length === 0) return 'the printed name is required (the signer\'s full name)';
  if (printedName.length > PRINTED_NAME_MAX_CHARS) return `the printed name has at most ${PRINTED_NAME_MAX_CHARS} characters`;
  if (CONTROL.test(printedName)) return 'the printed name cannot contain control or bidi characters';
  return null;
}

export class SigningPasswordStore {
  private entries: Entry[] = [];
  private fileError: string | null = null;
  private readonly watched: WatchedFile;
  private readonly now: () => number;

  constructor(private readonly opts: SigningPasswordStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.watched = new WatchedFile(join(opts.dataDir, 'signing-passwords.json'), this.now, opts.recheckMs);
  }

  get file(): string {
    return this.watched.path;
  }

  /** Loads the file (a missing file is an empty one). A corrupt file is logged and signs nobody. */
  start(): void {
    this.reload();
  }

  stop(): void {}

  /** Why the file could not be read, or null. */
  get loadError(): string | null {
    return this.fileError;
  }

  list(): SigningPasswordInfo[] {
    this.reload();
    return this.entries.map(info);
  }

  /** The user's printed name and when the password was set, or null without a signing password. */
  get(name: string): SigningPasswordInfo | null {
    this.maybeReload();
    const e = this.entries.find((x) => x.name === name);
    return e ? info(e) : null;
  }

  /** Checks a user's signing password: `none` when the user has none (or the file is unreadable). */
  async verify(name: string, password: string): Promise<PasswordCheck> {
    this.maybeReload();
    const e = this.entries.find((x) => x.name === name);
    if (!e) return 'none';
    return (await verifySigningPassword(password, e.scrypt)) ? 'ok' : 'wrong';
  }

  /**
   * Sets (or replaces) a user's signing password and printed name, audited `user.signing_password`
   * (detail: name and printed name only). `isApiToken` says whether a string is a valid API token: a signing
   * password must be a second, distinct component. A change that cannot be audited is undone.
   */
  async set(name: string, printedName: string, password: string, actor: Principal, isApiToken?: (s: string) => boolean): Promise<StoreChange<SigningPasswordInfo>> {
    if (!TOKEN_NAME_RE.test(name)) return { ok: false, reason: `invalid user name ${JSON.stringify(name)}: a token name, 1-64 of [A-Za-z0-9._@-]` };
    const nameWhy = printedNameProblem(printedName);
    if (nameWhy) return { ok: false, reason: nameWhy };
    const why = passwordProblem(password);
    if (why) return { ok: false, reason: why };
    if (password === name || (name.length >= 3 && password.toLowerCase().includes(name.toLowerCase()))) {
      return { ok: false, reason: 'a signing password must not contain the user name' };
    }
    if (isApiToken?.(password)) return { ok: false, reason: 'a signing password must not be an API token: it is the second, separate component of a signature' };
    const scryptHash = await hashSigningPassword(password, this.opts.scrypt);
    this.reload();
    if (this.fileError) return { ok: false, reason: `${this.file} is unreadable (${this.fileError}); fix or remove it first` };
    const entry: Entry = {
      name, printedName: printedName.trim(), setAt: new Date(this.now()).toISOString(), setBy: actor.user, scrypt: scryptHash,
    };
    const next = [...this.entries.filter((e) => e.name !== name), entry];
    try {
      this.watched.replaceAudited(JSON.stringify({ version: 1, users: next }, null, 2) + '\n', () => {
        this.opts.audit?.append({
          user: actor.user, role: actor.role, action: 'user.signing_password', outcome: 'set',
          detail: { name, printedName: entry.printedName },
        });
      });
    } finally {
      this.reload();
    }
    return { ok: true, value: info(entry) };
  }

  private maybeReload(): void {
    if (this.watched.changed()) this.reload();
  }

  private reload(): void {
    this.fileError = null;
    this.entries = [];
    try {
      const text = this.watched.read();
      if (text === null) return;
      const parsed = FileSchema.parse(JSON.parse(text));
      const seen = new Set<string>();
      for (const u of parsed.users) {
        if (seen.has(u.name)) throw new Error(`user ${u.name} is listed twice`);
        seen.add(u.name);
      }
      this.entries = parsed.users;
    } catch (err) {
      // Fail closed: nobody signs with a file we cannot read.
      this.fileError = err instanceof z.ZodError
        ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
        : (err as Error).message.split('\n')[0];
      this.opts.logger?.error({ file: this.file, error: this.fileError }, 'signing passwords file unreadable; nobody can sign');
    }
  }
}

function info(e: Entry): SigningPasswordInfo {
  return { name: e.name, printedName: e.printedName, setAt: e.setAt, setBy: e.setBy };
}

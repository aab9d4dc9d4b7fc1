/**
 * API tokens: `<dataDir>/tokens.json` holds names, roles and SHA-256 digests only (written
 * atomically, mode 0600), plus tokens provisioned (hashed) in the config file. Every change is audited.
 * The daemon notices changes made by the `msc-gateway tokens` CLI within `recheckMs`, so a revoked token
 * stops working without a restart.
 */
import { join } from 'node:path';
import { z } from 'zod';
import type { AuditSink } from '../audit/auditLog.js';
import type { Logger } from '../log.js';
import { isRole, ROLES, type Principal, type Role } from './roles.js';
import { WatchedFile } from '../util/watchedFile.js';
import { digestsEqual, generateToken, hashToken, SHA256_HEX_RE, TOKEN_MAX_CHARS } from './tokenHash.js';

/** Token names are user names in the audit trail: short, printable, no spaces. */
export const TOKEN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export const ProvisionedTokenSchema = z.object({
  name: z.string().regex(TOKEN_NAME_RE, 'must be 1-64 of [A-Za-z0-9._@-], starting with a letter or digit'),
  role: z.enum(ROLES),
  sha256: z.string().transform((s) => s.toLowerCase()).pipe(z.string().regex(SHA256_HEX_RE, 'must be 64 hex digits')),
}).strict();
export type ProvisionedToken = z.infer<typeof ProvisionedTokenSchema>;

/** The `auth` slice of the configuration (the lead adds `auth: AuthConfigSchema.prefault({})` to ConfigSchema). */
export const AuthConfigSchema = z.object({
  tokens: z.array(ProvisionedTokenSchema).default([]),
  /** Write routes (POST/PUT/PATCH/DELETE) per user: a burst, then a steady rate. */
  rateLimit: z.object({
    burst: z.number().int().min(1).default(20),
    perSecond: z.number().positive().default(5),
  }).prefault({}),
}).strict();
export type AuthConfig = z.infer<typeof AuthConfigSchema>;

export interface TokenInfo {
  name: string;
  role: Role;
  source: 'file' | 'config';
  createdAt: string | null;
  createdBy: string | null;
  /** First 8 hex digits of the digest, to tell tokens apart in listings; never enough to guess one. */
  fingerprint: string;
}

/** What the HTTP hook and the live stream need. */
export interface Authenticator {
  authenticate(token: string): Principal | null;
  /** Whether the token this principal authenticated with is still valid (revocation of open streams). */
  stillValid(principal: Principal): boolean;
}

export type TokenChange<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface TokenStoreOptions {
  dataDir: string;
  provisioned?: readonly ProvisionedToken[];
  audit?: AuditSink | null;
  logger?: Logger | null;
  /** How often authenticate() looks whether tokens.json changed on disk. */
  recheckMs?: number;
  now?: () => number;
}

interface Entry {
  name: string;
  role: Role;
  digest: Buffer;
  source: 'file' | 'config';
  createdAt: string | null;
  createdBy: string | null;
}

const FileSchema = z.object({
  version: z.literal(1),
  tokens: z.array(z.object({
    name: z.string().regex(TOKEN_NAME_RE),
    role: z.enum(ROLES),
    sha256: z.string().regex(SHA256_HEX_RE),
    createdAt: z.string().nullable().default(null),
    createdBy: z.string().nullable().default(null),
  })),
});

export class TokenStore implements Authenticator {
  private entries: Entry[] = [];
  private fileError: string | null = null;
  private readonly watched: WatchedFile;
  /** The digest each principal authenticated with, so revoking and re-adding a name still ends old sessions. */
  private readonly digests = new WeakMap<Principal, Buffer>();
  private readonly now: () => number;

  constructor(private readonly opts: TokenStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.watched = new WatchedFile(join(opts.dataDir, 'tokens.json'), this.now, opts.recheckMs);
  }

  get file(): string {
    return this.watched.path;
  }

  /** Loads tokens.json (a missing file is an empty one). A corrupt file is logged and accepts nobody. */
  start(): void {
    this.reload();
  }

  stop(): void {}

  /** Why tokens.json could not be read, or null. */
  get loadError(): string | null {
    return this.fileError;
  }

  authenticate(token: string): Principal | null {
    if (typeof token !== 'string' || token.length === 0 || token.length > TOKEN_MAX_CHARS) return null;
    this.maybeReload();
    const digest = Buffer.from(hashToken(token), 'hex');
    let found: Entry | null = null;
    // Every entry is compared, match or not, so the time taken does not tell which entry (if any) matched.
    for (const e of this.entries) if (digestsEqual(e.digest, digest) && !found) found = e;
    if (!found) return null;
    const principal: Principal = { user: found.name, role: found.role };
    this.digests.set(principal, found.digest);
    return principal;
  }

  stillValid(principal: Principal): boolean {
    this.maybeReload();
    const digest = this.digests.get(principal);
    return digest !== undefined
      && this.entries.some((e) => e.name === principal.user && e.role === principal.role && digestsEqual(e.digest, digest));
  }

  list(): TokenInfo[] {
    this.reload();
    return this.entries.map((e) => ({
      name: e.name, role: e.role, source: e.source, createdAt: e.createdAt, createdBy: e.createdBy,
      fingerprint: e.digest.toString('hex').slice(0, 8),
    }));
  }

  /** Creates a token; the clear token is in the result and nowhere else (print it once). */
  add(name: string, role: string, actor: Principal): TokenChange<{ token: string; info: TokenInfo }> {
    if (!TOKEN_NAME_RE.test(name)) return { ok: false, reason: `invalid name ${JSON.stringify(name)}: 1-64 of [A-Za-z0-9._@-]` };
    if (!isRole(role)) return { ok: false, reason: `invalid role ${JSON.stringify(role)}: one of ${ROLES.join(', ')}` };
    this.reload();
    if (this.fileError) return { ok: false, reason: `${this.file} is unreadable (${this.fileError}); fix or remove it first` };
    if (this.entries.some((e) => e.name === name)) return { ok: false, reason: `a token named ${name} exists; revoke it first` };
    const token = generateToken();
    const entry: Entry = {
      name, role, digest: Buffer.from(hashToken(token), 'hex'), source: 'file',
      createdAt: new Date(this.now()).toISOString(), createdBy: actor.user,
    };
    this.change([...this.fileEntries(), entry], actor, 'token.add', { name, role, fingerprint: entry.digest.toString('hex').slice(0, 8) });
    this.reload();
    return { ok: true, value: { token, info: this.list().find((i) => i.name === name)! } };
  }

  revoke(name: string, actor: Principal): TokenChange<TokenInfo> {
    this.reload();
    if (this.fileError) return { ok: false, reason: `${this.file} is unreadable (${this.fileError}); fix or remove it first` };
    const entry = this.entries.find((e) => e.name === name);
    if (!entry) return { ok: false, reason: `no token named ${name}` };
    if (entry.source === 'config') return { ok: false, reason: `token ${name} is provisioned in the config file; remove it there` };
    this.change(this.fileEntries().filter((e) => e.name !== name), actor, 'token.revoke',
      { name, role: entry.role, fingerprint: entry.digest.toString('hex').slice(0, 8) });
    this.reload();
    return { ok: true, value: { name, role: entry.role, source: 'file', createdAt: entry.createdAt, createdBy: entry.createdBy, fingerprint: entry.digest.toString('hex').slice(0, 8) } };
  }

  /** Writes the new token list and audits it; a change that cannot be audited is undone (Part 11). */
  private change(next: Entry[], actor: Principal, action: string, detail: Record<string, unknown>): void {
    this.watched.replaceAudited(fileText(next), () => {
      this.opts.audit?.append({ user: actor.user, role: actor.role, action, detail, outcome: 'done' });
    });
  }

  private fileEntries(): Entry[] {
    return this.entries.filter((e) => e.source === 'file');
  }

  private maybeReload(): void {
    if (this.watched.changed()) this.reload();
  }

  private reload(): void {
    const provisioned: Entry[] = (this.opts.provisioned ?? []).map((p) => ({
      name: p.name, role: p.role, digest: Buffer.from(p.sha256.toLowerCase(), 'hex'), source: 'config' as const,
      createdAt: null, createdBy: 'config',
    }));
    let fromFile: Entry[] = [];
    this.fileError = null;
    try {
      const text = this.watched.read();
      if (text !== null) {
        const parsed = FileSchema.parse(JSON.parse(text));
        fromFile = parsed.tokens.map((t) => ({ ...t, digest: Buffer.from(t.sha256, 'hex'), source: 'file' as const }));
      }
    } catch (err) {
      // Fail closed: a file we cannot read accepts nobody (config tokens still work).
      this.fileError = (err as Error).message.split('\n')[0];
      this.opts.logger?.error({ file: this.file, error: this.fileError }, 'tokens file unreadable; its tokens are refused');
    }
    const names = new Set(provisioned.map((p) => p.name));
    for (const e of fromFile) {
      if (names.has(e.name)) {
        this.opts.logger?.warn({ name: e.name }, 'token name in tokens.json is also provisioned in config; the config one wins');
        continue;
      }
      names.add(e.name);
      provisioned.push(e);
    }
    this.entries = provisioned;
  }

}

/** tokens.json's text for these entries (digests only, never a token). */
function fileText(entries: Entry[]): string {
  return JSON.stringify({
    version: 1,
    tokens: entries.map((e) => ({
      name: e.name, role: e.role, sha256: e.digest.toString('hex'), createdAt: e.createdAt, createdBy: e.createdBy,
    })),
  }, null, 2) + '\n';
}

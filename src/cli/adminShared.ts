/**
 * What the administrative CLI commands that change the gateway's users (`tokens`, `users`) share: who the change is
 * audited as, the tokens provisioned in a config file, and the journal opened for the audit trail.
 */
import { userInfo } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Principal } from '../auth/roles.js';
import { AuthConfigSchema, type ProvisionedToken } from '../auth/tokenStore.js';
import { readConfigFile } from '../config.js';
import { createPrivateFile, makePrivateDir } from '../util/privateFiles.js';

/** The operating-system user running the CLI, audited as `cli:<name>` with the admin role. */
export function cliActor(env: NodeJS.ProcessEnv): Principal {
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = env.USER ?? env.LOGNAME ?? 'unknown';
  }
  return { user: `cli:${name}`, role: 'admin' };
}

/** Tokens provisioned (hashed) in the config file's `auth.tokens`, or none. */
export function provisionedFrom(configFile: string | undefined): ProvisionedToken[] {
  if (!configFile) return [];
  const auth = AuthConfigSchema.safeParse(readConfigFile(configFile).auth ?? {});
  return auth.success ? auth.data.tokens : [];
}

/** The journal's database in `dataDir`, opened (created 0600 when missing, and so its -wal and -shm) for the audit trail. */
export function openAuditJournal(dataDir: string): Database.Database {
  makePrivateDir(dataDir);
  createPrivateFile(join(dataDir, 'journal.sqlite'));
  const db = new Database(join(dataDir, 'journal.sqlite'));
  db.pragma('journal_mode = WAL');
  return db;
}

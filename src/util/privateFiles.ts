/**
 * The data directory holds patient-circuit data (the journal), the audit trail and token hashes: only the
 * gateway's own user may read it. The directory is 0700 and every file in it 0600, whatever the process umask.
 * SQLite creates `-wal` and `-shm` with the mode of the database file, so the database file is created 0600
 * before SQLite opens it.
 */
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates the directory (and missing parents) 0700; an existing one is left as it is (see secureDataDir). */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/** Creates an empty file 0600 when it does not exist; an existing file is not touched. */
export function createPrivateFile(file: string): void {
  closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
}

export interface Tightened {
  path: string;
  from: string;
  to: string;
}

const octal = (mode: number) => (mode & 0o777).toString(8).padStart(3, '0');

/**
 * Creates `dir` 0700, or tightens it and the files and directories directly in it when group or others have
 * any access (an older gateway, a restored backup, a copy made with a loose umask); one warning line names what
 * was changed. Symbolic links are not followed (a link must not make the gateway chmod a file elsewhere). A
 * directory that cannot be created or a mode that cannot be changed (another owner, a read-only mount) is
 * logged, never thrown: the gateway still runs and the journal reports its own failure.
 */
export function secureDataDir(dir: string, logger?: Logger | null): Tightened[] {
  try {
    makePrivateDir(dir);
  } catch (err) {
    // The journal reports an unusable data directory (STORAGE_FAILURE) and retries: not this function's to stop.
    logger?.error({ dir, error: (err as Error).message }, 'data directory cannot be created');
    return [];
  }
  const changed: Tightened[] = [];
  const failed: Array<{ path: string; error: string }> = [];
  // Group and others lose every bit; the owner's are kept (a read-only file stays read-only).
  const tighten = (path: string) => {
    try {
      const st = lstatSync(path);
      if (st.isSymbolicLink() || (!st.isFile() && !st.isDirectory())) return;
      if ((st.mode & 0o077) === 0) return;
      const to = st.mode & 0o700;
      chmodSync(path, to);
      changed.push({ path, from: octal(st.mode), to: octal(to) });
    } catch (err) {
      // ENOENT: removed meanwhile (a -shm at checkpoint); nothing to tighten.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') failed.push({ path, error: (err as Error).message });
    }
  };
  tighten(dir);
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch (err) {
    failed.push({ path: dir, error: (err as Error).message });
  }
  for (const name of names) tighten(join(dir, name));
  if (changed.length > 0) {
    logger?.warn({ dir, changed }, 'data directory was open to other users: their permissions removed (directory 0700, files 0600)');
  }
  if (failed.length > 0) {
    logger?.error({ dir, failed }, 'data directory permissions could not be tightened: other users may read it');
  }
  return changed;
}

/**
 * A private file that the daemon reads and a CLI beside it may rewrite (tokens.json, signing-passwords.json): the
 * daemon looks whether it changed on disk at most every `recheckMs` (inode, size and mtime) and reads it again
 * only then; every write replaces it atomically with mode 0600, and a change whose audit record cannot be written
 * is undone (21 CFR Part 11: no unaudited change).
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { writeFileAtomic } from './atomicFile.js';

const ABSENT = 'absent';

function stampOf(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return ABSENT;
  }
}

export class WatchedFile {
  private stamp = '';
  private lastCheck = -Infinity;

  constructor(readonly path: string, private readonly now: () => number, private readonly recheckMs = 1000) {}

  /** Whether the file changed on disk since the last read(); looks at most every recheckMs, else says no. */
  changed(): boolean {
    const now = this.now();
    if (now - this.lastCheck < this.recheckMs) return false;
    this.lastCheck = now;
    return stampOf(this.path) !== this.stamp;
  }

  /** The file's text, or null when there is none. Throws when it exists but cannot be read. */
  read(): string | null {
    this.stamp = stampOf(this.path);
    this.lastCheck = this.now();
    return this.stamp === ABSENT ? null : readFileSync(this.path, 'utf8');
  }

  /**
   * Replaces the file with `text`, then runs `audit`. When `audit` throws, the file is put back as it was (removed
   * when there was none) and the error is thrown on.
   */
  replaceAudited(text: string, audit: () => void): void {
    let previous: string | null;
    try {
      previous = readFileSync(this.path, 'utf8');
    } catch {
      previous = null;
    }
    writeFileAtomic(this.path, text, 0o600);
    try {
      audit();
    } catch (err) {
      if (previous !== null) writeFileAtomic(this.path, previous, 0o600);
      else rmSync(this.path, { force: true });
      throw err;
    }
  }
}

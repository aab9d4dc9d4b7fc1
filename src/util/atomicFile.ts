/**
 * Replaces a small file atomically: write a temporary file, fsync it, rename it over the old one, fsync the
 * directory. A crash leaves the old file or the new one, never half of one (alarm state, tokens).
 * Every file written this way is in the data directory (patients' alarms, token hashes): 0600 in a 0700
 * directory unless the caller says otherwise (src/util/privateFiles.ts).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { mkdir, open, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './privateFiles.js';

export function writeFileAtomic(file: string, text: string, mode = PRIVATE_FILE_MODE): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  try {
    const d = openSync(dir, 'r');
    try { fsyncSync(d); } finally { closeSync(d); }
  } catch {
    // Directory fsync is not supported everywhere; the rename itself is atomic.
  }
}

let tmpCounter = 0;

/**
 * The same replacement with every disk wait in libuv's thread pool, so a slow or stalled disk never holds the
 * event loop (live stream, alarms: docs/storage.md). `commit` runs on the event loop just before the rename
 * and may refuse it (a newer version was written meanwhile): the temporary file is then removed.
 */
export async function writeFileAtomicAsync(file: string, text: string, opts: { mode?: number; commit?: () => boolean } = {}): Promise<boolean> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const tmp = `${file}.${process.pid}.${++tmpCounter}.tmp`;
  const handle = await open(tmp, 'w', opts.mode ?? PRIVATE_FILE_MODE);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (opts.commit && !opts.commit()) {
    await unlink(tmp).catch(() => undefined);
    return false;
  }
  // Synchronous on purpose: nothing can run between the check above and the rename (a rename waits for no data).
  renameSync(tmp, file);
  try {
    const d = await open(dir, 'r');
    try { await d.sync(); } finally { await d.close(); }
  } catch {
    // Directory fsync is not supported everywhere; the rename itself is atomic.
  }
  return true;
}

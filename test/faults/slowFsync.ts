/**
 * Builds the slow-fsync LD_PRELOAD shim (test/faults/slow-fsync.c) once per process with the system C
 * compiler, and gives the environment that loads it into a child process.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const SOURCE = resolve(import.meta.dirname, '../../../test/faults/slow-fsync.c');
const SOURCE_FROM_TS = resolve(import.meta.dirname, 'slow-fsync.c');
let built: string | null = null;

/** Path of the compiled shim (cc is needed: Debian's gcc, installed by .ci/run when missing). */
export function slowFsyncLibrary(): string {
  if (built && existsSync(built)) return built;
  const source = existsSync(SOURCE_FROM_TS) ? SOURCE_FROM_TS : SOURCE;
  const out = join(mkdtempSync(join(tmpdir(), 'msc-slow-fsync-')), 'slow-fsync.so');
  execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', out, source, '-ldl'], { stdio: 'pipe' });
  built = out;
  return out;
}

/**
 * Environment for a child process whose fsyncs take `delayMs` longer, and stall while `stallFile` exists; and whose
 * writes to files with `writeStallMatch` in their path stall while `writeStallFile` exists (a disk past the kernel's
 * dirty-page limit, where write(2) itself blocks).
 */
export function slowFsyncEnv(opts: { delayMs?: number; stallFile?: string; writeStallFile?: string; writeStallMatch?: string }): NodeJS.ProcessEnv {
  return {
    LD_PRELOAD: slowFsyncLibrary(),
    MSC_FSYNC_DELAY_MS: String(opts.delayMs ?? 0),
    ...(opts.stallFile ? { MSC_FSYNC_STALL_FILE: opts.stallFile } : {}),
    ...(opts.writeStallFile ? { MSC_WRITE_STALL_FILE: opts.writeStallFile, MSC_WRITE_STALL_MATCH: opts.writeStallMatch ?? '' } : {}),
  };
}

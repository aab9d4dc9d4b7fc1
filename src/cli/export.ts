/**
 * `msc-gateway export SESSION --out FILE [--format csv|json] [--every 10s] [--device ID] [--data-dir DIR]`
 * is the same export as `GET /api/sessions/:id/export`, read from the journal opened read-only (the
 * daemon may keep running). A progress bar goes to stderr on a terminal, nothing otherwise; stdout gets
 * `<sha256>  FILE`, the `sha256sum` format, so `sha256sum -c` can check the saved copy later.
 * Exit status: 0 written, 1 no such session (or ambiguous), 2 usage or I/O error.
 */
import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { SESSION_ID_RE } from '../protocol/commands.js';
import { exportSession, type ExportFormat } from '../sessions/export.js';
import { findRecords } from '../sessions/records.js';
import { resolveDataDir, type CliIo } from './audit.js';

export const EXPORT_USAGE = `Usage: msc-gateway export SESSION --out FILE [--format csv|json] [--every DURATION]
                          [--device ID] [--data-dir DIR] [--config FILE]

Writes the session's telemetry (raw, or the mean per --every bucket such as 10s or 1m), states, device
events, alarms, annotations and audit records to FILE, and prints "<sha256>  FILE" (sha256sum format).
The format defaults to the extension of FILE (.csv, else JSON).
Exit status: 0 written, 1 no such session, 2 usage or I/O error.
`;

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

export async function exportCommand(
  argv: string[], env: NodeJS.ProcessEnv, io: CliIo & { isTTY?: boolean } = { out: process.stdout, err: process.stderr, isTTY: process.stderr.isTTY },
  now: () => number = Date.now,
): Promise<number> {
  const usage = (message: string) => {
    io.err.write(`msc-gateway export: ${message}\n\n${EXPORT_USAGE}`);
    return 2;
  };
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        out: { type: 'string', short: 'o' }, format: { type: 'string' }, every: { type: 'string' }, device: { type: 'string' },
        'data-dir': { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help) {
    io.out.write(EXPORT_USAGE);
    return 0;
  }
  const sessionId = positionals[0];
  if (positionals.length !== 1 || !SESSION_ID_RE.test(sessionId)) return usage('give one SESSION id (1-32 of [A-Za-z0-9-])');
  const out = values.out as string | undefined;
  if (!out) return usage('--out FILE is required');
  const format = (values.format as string | undefined) ?? (/\.csv$/i.test(out) ? 'csv' : 'json');
  if (format !== 'csv' && format !== 'json') return usage('--format must be csv or json');
  let everyMs: number | undefined;
  if (values.every !== undefined) {
    const m = /^([1-9]\d{0,6})(ms|s|m|h)$/.exec(values.every as string);
    if (!m) return usage('--every: expected a duration like 500ms, 10s, 1m or 1h');
    everyMs = Number(m[1]) * UNIT_MS[m[2]];
  }

  let db: Database.Database;
  try {
    const file = join(resolveDataDir(values as { 'data-dir'?: string; config?: string }, env), 'journal.sqlite');
    if (!existsSync(file)) {
      io.err.write(`msc-gateway export: no journal at ${file}\n`);
      return 2;
    }
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    io.err.write(`msc-gateway export: cannot open the journal: ${(err as Error).message}\n`);
    return 2;
  }
  const partial = `${out}.partial`;
  try {
    const found = findRecords(db, sessionId, values.device as string | undefined);
    const devices = [...new Set(found.map((r) => r.device))];
    if (found.length === 0 || devices.length > 1) {
      io.err.write(found.length === 0
        ? `msc-gateway export: no session ${sessionId}${values.device ? ` on ${values.device}` : ''}\n`
        : `msc-gateway export: session ${sessionId} ran on ${devices.join(', ')}: add --device\n`);
      return 1;
    }
    const bar = io.isTTY ? progressBar(io.err) : null;
    const result = await exportSession(() => db, found[0], { format: format as ExportFormat, everyMs, now: now(), onProgress: bar?.update });
    bar?.done();
    try {
      // Never a half-written FILE: copy beside it, then rename over it.
      copyFileSync(result.path, partial);
      renameSync(partial, out);
    } finally {
      result.remove();
    }
    io.out.write(`${result.sha256}  ${out}\n`);
    return 0;
  } catch (err) {
    rmSync(partial, { force: true });
    io.err.write(`msc-gateway export: ${(err as Error).message}\n`);
    return 2;
  } finally {
    db.close();
  }
}

/** `[#########.........]  45%  12000/27000 samples` redrawn in place, at most every 100 ms. */
function progressBar(err: NodeJS.WritableStream): { update: (done: number, total: number) => void; done: () => void } {
  const width = 30;
  let lastDraw = 0;
  let latest: [number, number] = [0, 0];
  const draw = ([done, total]: [number, number]) => {
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const full = Math.round(frac * width);
    err.write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.round(frac * 100)).padStart(3)}%  ${done}/${total} samples`);
  };
  return {
    update(done, total) {
      latest = [done, total];
      const t = Date.now();
      if (t - lastDraw >= 100) {
        lastDraw = t;
        draw(latest);
      }
    },
    done() {
      draw(latest);
      err.write('\n');
    },
  };
}

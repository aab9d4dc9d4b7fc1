/**
 * `msc-gateway audit verify [--data-dir DIR] [--config FILE]`: walks the audit trail's hash chain in
 * `<dataDir>/journal.sqlite`, opened read-only. Exit 0 when intact; 1 naming the first broken record when any
 * record was altered, removed or reordered; 2 for a usage error or a journal that cannot be opened.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { AuditLog } from '../audit/auditLog.js';
import { readConfigFile } from '../config.js';

export const AUDIT_USAGE = `Usage: msc-gateway audit verify [--data-dir DIR] [--config FILE]

Checks that no audit record was altered, removed or reordered (hash chain).
Exit status: 0 intact, 1 broken (the first broken record is named), 2 usage or I/O error.
`;

export interface CliIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}
const STDIO: CliIo = { out: process.stdout, err: process.stderr };

/** --data-dir, else MSC_DATA_DIR, else the config file's dataDir, else ./data (the daemon's default). */
export function resolveDataDir(flags: { 'data-dir'?: string; config?: string }, env: NodeJS.ProcessEnv): string {
  if (flags['data-dir']) return flags['data-dir'];
  if (env.MSC_DATA_DIR) return env.MSC_DATA_DIR;
  if (flags.config) {
    const raw = readConfigFile(flags.config);
    if (typeof raw.dataDir === 'string' && raw.dataDir) return raw.dataDir;
  }
  return './data';
}

export async function auditCommand(argv: string[], env: NodeJS.ProcessEnv, io: CliIo = STDIO): Promise<number> {
  let values: { 'data-dir'?: string; config?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { 'data-dir': { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    io.err.write(`msc-gateway audit: ${(err as Error).message}\n\n${AUDIT_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out.write(AUDIT_USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'verify') {
    io.err.write(`msc-gateway audit: expected "verify"\n\n${AUDIT_USAGE}`);
    return 2;
  }
  let file: string;
  let db: Database.Database;
  try {
    file = join(resolveDataDir(values, env), 'journal.sqlite');
    if (!existsSync(file)) {
      io.err.write(`msc-gateway audit: no journal at ${file}\n`);
      return 2;
    }
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    io.err.write(`msc-gateway audit: cannot open the journal: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    const verdict = new AuditLog({ db, readonly: true }).verify();
    if (verdict.ok) {
      io.out.write(`audit trail intact: ${verdict.count} records; head #${verdict.headId} ${verdict.headHash}\n`);
      return 0;
    }
    io.out.write(`audit trail BROKEN at record #${verdict.firstBrokenId}: ${verdict.reason} (${verdict.count} records verified before it)\n`);
    return 1;
  } catch (err) {
    io.err.write(`msc-gateway audit: cannot read the journal: ${(err as Error).message}\n`);
    return 2;
  } finally {
    db.close();
  }
}

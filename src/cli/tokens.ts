/**
 * `msc-gateway tokens add --name NAME --role ROLE | list | revoke NAME [--data-dir DIR] [--config FILE]`.
 * `add` prints the new token once, alone on stdout (so `T=$(msc-gateway tokens add ...)` works),
 * and stores only its SHA-256. Every change is appended to the audit trail in `<dataDir>/journal.sqlite` as
 * the operating-system user who ran the command, with role admin: whoever can write the data directory
 * administers the gateway. A running daemon sees the change within a second.
 */
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { AuditLog } from '../audit/auditLog.js';
import { ROLES } from '../auth/roles.js';
import { TokenStore, type ProvisionedToken } from '../auth/tokenStore.js';
import { cliActor, openAuditJournal, provisionedFrom } from './adminShared.js';
import { resolveDataDir, type CliIo } from './audit.js';

export const TOKENS_USAGE = `Usage: msc-gateway tokens <command> [--data-dir DIR] [--config FILE]

Commands:
  add --name NAME --role ROLE   create a token (printed once; only its hash is stored)
  list [--json]                 list tokens (names, roles, fingerprints; never the tokens)
  revoke NAME                   revoke a token (open live streams using it are closed)

Roles: ${ROLES.join(' < ')} (each includes the ones before it).
`;

const STDIO: CliIo = { out: process.stdout, err: process.stderr };



export async function tokensCommand(argv: string[], env: NodeJS.ProcessEnv, io: CliIo = STDIO): Promise<number> {
  let values: { name?: string; role?: string; json?: boolean; 'data-dir'?: string; config?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        name: { type: 'string' }, role: { type: 'string' }, json: { type: 'boolean' },
        'data-dir': { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.err.write(`msc-gateway tokens: ${(err as Error).message}\n\n${TOKENS_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out.write(TOKENS_USAGE);
    return 0;
  }
  const [command, ...rest] = positionals;
  const usage = (why: string) => {
    io.err.write(`msc-gateway tokens: ${why}\n\n${TOKENS_USAGE}`);
    return 2;
  };
  if (command === 'add' && (!values.name || !values.role || rest.length > 0)) return usage('add needs --name NAME --role ROLE');
  if (command === 'revoke' && rest.length !== 1) return usage('revoke needs the token NAME');
  if (command === 'list' && rest.length > 0) return usage('list takes no arguments');
  if (command !== 'add' && command !== 'revoke' && command !== 'list') return usage(command ? `unknown command ${command}` : 'a command is required');

  let dataDir: string;
  let provisioned: ProvisionedToken[];
  try {
    dataDir = resolveDataDir(values, env);
    provisioned = provisionedFrom(values.config);
  } catch (err) {
    return usage((err as Error).message);
  }
  const actor = cliActor(env);

  if (command === 'list') {
    const store = new TokenStore({ dataDir, provisioned });
    const tokens = store.list();
    if (store.loadError) {
      io.err.write(`msc-gateway tokens: ${store.file} is unreadable: ${store.loadError}\n`);
      return 1;
    }
    if (values.json) {
      io.out.write(JSON.stringify(tokens, null, 2) + '\n');
    } else {
      io.out.write(`${'NAME'.padEnd(24)} ${'ROLE'.padEnd(9)} ${'SOURCE'.padEnd(7)} ${'CREATED'.padEnd(25)} FINGERPRINT\n`);
      for (const t of tokens) {
        io.out.write(`${t.name.padEnd(24)} ${t.role.padEnd(9)} ${t.source.padEnd(7)} ${(t.createdAt ?? '-').padEnd(25)} ${t.fingerprint}\n`);
      }
    }
    return 0;
  }

  let db: Database.Database;
  try {
    db = openAuditJournal(dataDir);
  } catch (err) {
    io.err.write(`msc-gateway tokens: cannot open the journal for the audit trail: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const audit = new AuditLog({ db });
    audit.start();
    const store = new TokenStore({ dataDir, provisioned, audit });
    if (command === 'add') {
      const res = store.add(values.name!, values.role!, actor);
      if (!res.ok) {
        io.err.write(`msc-gateway tokens: ${res.reason}\n`);
        return 1;
      }
      io.err.write(`token for ${res.value.info.name} (${res.value.info.role}); it is shown once, store it now:\n`);
      io.out.write(`${res.value.token}\n`);
      return 0;
    }
    const res = store.revoke(rest[0], actor);
    if (!res.ok) {
      io.err.write(`msc-gateway tokens: ${res.reason}\n`);
      return 1;
    }
    io.out.write(`revoked ${res.value.name} (${res.value.role})\n`);
    return 0;
  } catch (err) {
    io.err.write(`msc-gateway tokens: ${(err as Error).message}\n`);
    return 1;
  } finally {
    db.close();
  }
}

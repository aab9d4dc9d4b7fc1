#!/usr/bin/env node
/**
 * `msc-gateway`: the daemon's command line. Configuration errors are reported with the offending field path
 * and exit code 2 before anything starts.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { auditCommand } from './audit.js';
import { exportCommand } from './export.js';
import { loadConfigFromArgs, USAGE } from './options.js';
import { tokensCommand } from './tokens.js';
import { usersCommand } from './users.js';

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv[0] === 'tokens') return tokensCommand(argv.slice(1), env);
  if (argv[0] === 'users') return usersCommand(argv.slice(1), env);
  if (argv[0] === 'audit') return auditCommand(argv.slice(1), env);
  if (argv[0] === 'export') return exportCommand(argv.slice(1), env);
  let loaded;
  try {
    loaded = loadConfigFromArgs(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`msc-gateway: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (loaded.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (loaded.version) {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const logger = createLogger(loaded.config.log.level);
  let gateway: Gateway;
  try {
    gateway = new Gateway(loaded.config, { logger });
  } catch (err) {
    // Files the configuration names (mqtt.passwordFile, mqtt.ca, ...) are read here: the same exit as a bad field.
    if (err instanceof ConfigError) {
      process.stderr.write(`msc-gateway: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  let exiting = false;
  const shutdown = (signal: string) => {
    if (exiting) return;
    exiting = true;
    logger.info({ signal }, 'shutting down');
    // Exit within 5 s whatever happens.
    setTimeout(() => {
      logger.error('shutdown took longer than 5 s; exiting');
      process.exit(1);
    }, 5000).unref();
    gateway.stop().then(() => process.exit(0), (err) => {
      logger.error({ err }, 'error during shutdown');
      process.exit(1);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  try {
    await gateway.start();
  } catch (err) {
    logger.fatal({ err }, `cannot start: ${(err as Error).message}`);
    await gateway.stop().catch(() => {});
    return 1;
  }
  return -1; // keep running
}

const isMain = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  main(process.argv.slice(2), process.env).then((code) => {
    if (code >= 0) process.exit(code);
  }, (err) => {
    process.stderr.write(`msc-gateway: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}

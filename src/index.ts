/**
 * Programmatic API (`import { startGateway } from 'msc-gateway'`): the same Gateway the `msc-gateway` command
 * runs, built from the same configuration schema, for a process of the caller's own (a supervisor, an
 * integration test in a user's CI). The simulator is the other entry point, `msc-gateway/sim`.
 *
 * Unlike the command, this installs no signal handlers and never exits the process: the caller owns both,
 * and must call stop() (which drains the journal and closes every port) before it exits.
 */
import { parseConfig, type Config, type ConfigInput } from './config.js';
import { Gateway } from './gateway.js';
import { createLogger, type Logger } from './log.js';

export { ConfigError, parseConfig, readConfigFile } from './config.js';
export type { Config, ConfigInput } from './config.js';
export { Gateway } from './gateway.js';
export type { GatewayOptions } from './gateway.js';
export type { HealthReport } from './api/server.js';
export { createLogger, silentLogger } from './log.js';
export type { Logger } from './log.js';

export interface StartGatewayOptions {
  /** pino logger; default: JSON lines on stdout at the configuration's `log.level`, as the command logs. */
  logger?: Logger;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

export interface RunningGateway {
  readonly gateway: Gateway;
  /** The configuration in force, defaults filled in. */
  readonly config: Config;
  /** The bound HTTP address (`http.port: 0` picks a free port). */
  readonly url: string;
  /** Stops intake, drains and persists, closes the servers. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Validates `config` (a ConfigError naming each bad field, before anything starts), starts the gateway and
 * resolves once it listens. A start that fails midway stops what had started before the error is thrown, so
 * no port, timer or database handle is left behind.
 */
export async function startGateway(config: ConfigInput, opts: StartGatewayOptions = {}): Promise<RunningGateway> {
  const parsed = parseConfig(config);
  const gateway = new Gateway(parsed, { logger: opts.logger ?? createLogger(parsed.log.level), now: opts.now });
  try {
    await gateway.start();
  } catch (err) {
    await gateway.stop().catch(() => {});
    throw err;
  }
  return { gateway, config: parsed, url: gateway.httpUrl, stop: () => gateway.stop() };
}

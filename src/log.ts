/** One root logger, JSON lines on stdout; modules take `logger.child({ module })`. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { app: 'msc-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Secrets never reach a log line: tokens, passwords, Authorization headers.
      redact: {
        paths: [
          'password', '*.password', 'token', '*.token', 'config.mqtt.password', 'config.influx.token',
          'req.headers.authorization', 'headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? process.stdout,
  );
}

/** A logger that writes nothing, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

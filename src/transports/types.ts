/**
 * What every transport offers the composition root, /healthz and /metrics; plus the small helpers both use.
 * A transport reads a device link (serial port or MQTT broker), decodes with src/protocol and hands frames to
 * an IngestSink (src/model/types.ts); it owns no device state beyond identity and reachability.
 */
import type { TransportKind } from '../bus.js';

export interface TransportStatus {
  kind: TransportKind;
  /** Port path or broker URL without credentials. */
  source: string;
  /** Serial: port open. MQTT: connected and subscription granted. */
  up: boolean;
  /** One human line: what the transport is doing now. */
  detail: string;
  /** Times the link came back after it was lost (not counting the first open/connect). */
  reconnects: number;
  lastError: string | null;
}

export interface Transport {
  readonly kind: TransportKind;
  /** Begins opening/connecting and resolves without waiting for the link: an absent device is not a failure. */
  start(): Promise<void>;
  /** Stops retries and closes the link; safe to call twice. */
  stop(): Promise<void>;
  status(): TransportStatus;
}

type LogFn = {
  (obj: object, msg?: string): void;
  (msg: string): void;
};

/** The part of a pino logger transports use (a pino `Logger` fits). */
export interface TransportLogger {
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  debug: LogFn;
  child(bindings: Record<string, unknown>): TransportLogger;
}

export { LogThrottle } from '../util/logThrottle.js';

/** `mqtt://user:secret@host:1883` → `mqtt://user@host:1883`: a source string never carries a password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    // Not a URL we can parse: keep only what cannot be a secret.
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

/** mqtt:// or ws:// to anything but loopback: a password (and every command) would cross the network in clear. */
export function sendsInClear(url: string): boolean {
  try {
    const u = new URL(url);
    if (u.protocol === 'mqtts:' || u.protocol === 'wss:') return false;
    return !/^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i.test(u.hostname);
  } catch {
    return true;
  }
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Resolves with p's value, or with undefined after ms, whichever is first. */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

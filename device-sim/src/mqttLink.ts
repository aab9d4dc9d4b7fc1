/**
 * The console's MQTT binding (ICD §2): one client per console, client id = device id, last will
 * `status` = `offline` (retained, QoS 1), retained `hello` and `status online` on every connect,
 * QoS 1 for everything it publishes, commands on `<prefix>/<id>/cmd`.
 *
 * ICD: silent on telemetry produced while the broker is unreachable. Choice: it is lost, not
 * buffered (the console has no journal); the gateway sees it as a seq gap, and stats() counts it
 * as dropped so CI can compare.
 */
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { decodeMqttCommand, encodeMqttPayload } from '../../src/protocol/mqtt.js';
import type { TelemetryFrame } from '../../src/protocol/types.js';
import type { SimAction } from './actions.js';
import type { ConsoleFrame, SimulatedConsole } from './console.js';
import type { FrameLedger } from './ledger.js';
import type { Rng } from './rng.js';
import type { SimLink } from './serialLink.js';

export interface MqttLinkOptions {
  url: string;
  /** Topic root, default `msc/v1` (ICD §2). */
  prefix: string;
  console: SimulatedConsole;
  ledger: FrameLedger;
  rng: Rng;
  log: Logger;
  /** Samples per telemetry message; default 1 up to 20 Hz, then rate/5 (at most 100, ICD §2). */
  batch?: number;
  /** How long start() waits for the broker, ms (default 10 000). */
  connectTimeoutMs?: number;
  /** Broker credentials: on a broker with users the user name is the console's device id (deploy/mosquitto/acl). */
  username?: string;
  password?: string;
  /** TLS (mqtts://): PEM contents of the broker's CA, and a client certificate and key if the broker wants one. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** `mqtt://user:secret@host` → `mqtt://user@host`: a password in the URL never reaches a log or an error. */
function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, '$1@');
}

/** A batch waits at most this long (real time) for more samples. */
const BATCH_LINGER_MS = 200;
const MAX_BATCH = 100;

export class MqttLink implements SimLink {
  private client: MqttClient | null = null;
  private unsubscribe: (() => void) | null = null;
  private pending: TelemetryFrame[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private down = false;
  private stopped = false;
  private lastTelemetryPayload = '';
  /** Why the last connection attempt failed (a refused login reads "Not authorized"), for start()'s error. */
  private lastError: string | null = null;

  constructor(private readonly opts: MqttLinkOptions) {}

  private topic(kind: string): string {
    return `${this.opts.prefix}/${this.opts.console.deviceId}/${kind}`;
  }

  async start(): Promise<void> {
    this.unsubscribe = this.opts.console.onFrame((f) => this.send(f));
    const client = this.connect();
    this.client = client;
    const timeoutMs = this.opts.connectTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.end(true);
        this.client = null;
        const why = this.lastError ? `: ${this.lastError}` : '';
        reject(new Error(`MQTT broker ${redactUrl(this.opts.url)} not reachable within ${timeoutMs} ms${why}`));
      }, timeoutMs);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Clean stop: pending telemetry, then `status offline` (retained), then a clean DISCONNECT. Safe twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.flush();
    const client = this.client;
    this.client = null;
    if (!client) return;
    if (client.connected) {
      try {
        await client.publishAsync(this.topic('status'), 'offline', { qos: 1, retain: true });
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'could not publish status offline');
      }
      await client.endAsync();
    } else {
      await client.endAsync(true);
    }
  }

  applyLinkAction(a: SimAction): void {
    const { console: c, ledger, log } = this.opts;
    switch (a.action) {
      case 'link_drop':
      case 'power_cycle': {
        // A console without power loses its TCP connection too: the broker publishes the last will.
        ledger.device(c.deviceId).linkDrops++;
        this.down = true;
        this.dropPending();
        // end(true) closes the socket without DISCONNECT, so the broker publishes the last will.
        this.client?.end(true);
        this.client = null;
        const restore = (): void => {
          this.down = false;
          if (!this.stopped) this.client = this.connect();
        };
        if (a.action === 'power_cycle') c.schedule(c.simNow + (a.durationMs ?? 0), restore);
        else if (a.durationMs !== undefined) c.schedule(c.simNow + a.durationMs, restore);
        return;
      }
      case 'garbage_bytes':
        this.publishGarbage(a.params.count, a.params.mode);
        return;
      case 'bad_crc':
        log.warn({ device: c.deviceId }, 'bad_crc does not apply to MQTT (no CRC, ICD §2); ignored');
        return;
      default:
        throw new Error(`${a.action} is not a link action`);
    }
  }

  private connect(): MqttClient {
    const options: IClientOptions = {
      clientId: this.opts.console.deviceId,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      queueQoSZero: false,
      will: { topic: this.topic('status'), payload: Buffer.from('offline'), qos: 1, retain: true },
      username: this.opts.username,
      password: this.opts.password,
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
      ...(this.opts.cert ? { cert: this.opts.cert } : {}),
      ...(this.opts.key ? { key: this.opts.key } : {}),
      rejectUnauthorized: true,
    };
    const client = connect(this.opts.url, options);
    client.on('connect', () => {
      const c = this.opts.console;
      this.publish('status', 'online', true);
      // Before power-up the console's own HELLO follows; after a reconnect the link says it again.
      if (c.isPowered) {
        const hello = c.hello();
        this.publish('hello', encodeMqttPayload(hello), true);
        this.opts.ledger.note(c.deviceId, hello, 'sent');
      }
      client.subscribe(this.topic('cmd'), { qos: 1 }, (err) => {
        if (err) this.opts.log.warn({ err: err.message, device: c.deviceId }, 'cmd subscribe failed');
      });
    });
    client.on('message', (topic, payload) => {
      if (topic !== this.topic('cmd') || this.down) return;
      const stats = this.opts.ledger.device(this.opts.console.deviceId);
      const decoded = decodeMqttCommand(payload);
      if (decoded.type === 'discard') stats.commandsDiscarded++;
      else stats.commandsReceived++;
      this.opts.console.receive(decoded);
    });
    client.on('error', (err) => {
      this.lastError = err.message;
      this.opts.log.warn({ err: err.message, device: this.opts.console.deviceId }, 'mqtt error');
    });
    return client;
  }

  private get connected(): boolean {
    return !this.down && this.client?.connected === true;
  }

  private batchSize(): number {
    const rate = this.opts.console.rate;
    return Math.min(MAX_BATCH, Math.max(1, this.opts.batch ?? (rate > 20 ? Math.ceil(rate / 5) : 1)));
  }

  private send(frame: ConsoleFrame): void {
    if (frame.type === 'T') {
      this.pending.push(frame);
      if (this.pending.length >= this.batchSize()) this.flush();
      else this.flushTimer ??= setTimeout(() => this.flush(), BATCH_LINGER_MS);
      return;
    }
    // Telemetry first, so messages leave in seq order.
    this.flush();
    const { console: c, ledger } = this.opts;
    if (!this.connected) {
      ledger.note(c.deviceId, frame, 'dropped');
      return;
    }
    const kind = frame.type === 'HELLO' ? 'hello' : frame.type === 'S' ? 'state' : frame.type === 'EV' ? 'event' : 'ack';
    this.publish(kind, encodeMqttPayload(frame), frame.type === 'HELLO');
    ledger.note(c.deviceId, frame, 'sent');
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.pending.length === 0) return;
    if (!this.connected) {
      this.dropPending();
      return;
    }
    const batch = this.pending;
    this.pending = [];
    const { console: c, ledger } = this.opts;
    const payload = batch.length === 1 && this.batchSize() === 1 ? encodeMqttPayload(batch[0]) : encodeMqttPayload(batch);
    this.lastTelemetryPayload = payload;
    this.publish('telemetry', payload, false);
    ledger.device(c.deviceId).messages++;
    for (const f of batch) ledger.note(c.deviceId, f, 'sent');
  }

  private dropPending(): void {
    const { console: c, ledger } = this.opts;
    for (const f of this.pending) ledger.note(c.deviceId, f, 'dropped');
    this.pending = [];
  }

  /** Not JSON on the telemetry topic: random bytes, or a telemetry payload cut short. */
  private publishGarbage(count: number, mode: 'binary' | 'partial'): void {
    if (!this.connected) return;
    const bytes = mode === 'partial' && this.lastTelemetryPayload.length > 1
      ? Buffer.from(this.lastTelemetryPayload.slice(0, Math.max(1, Math.min(count, this.lastTelemetryPayload.length - 1))))
      : Buffer.from(Array.from({ length: count }, () => this.opts.rng.int(0, 255)));
    this.opts.ledger.device(this.opts.console.deviceId).garbageBytes += bytes.length;
    this.client?.publish(this.topic('telemetry'), bytes, { qos: 1 });
  }

  private publish(kind: string, payload: string, retain: boolean): void {
    this.client?.publish(this.topic(kind), payload, { qos: 1, retain }, (err) => {
      if (err) this.opts.log.warn({ err: err.message, device: this.opts.console.deviceId, kind }, 'publish failed');
    });
  }
}

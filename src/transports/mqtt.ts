/**
 * Every console behind one MQTT broker (ICD §2). A persistent MQTT 5 session and a PUBACK sent only once the
 * sink says the message is durable: what the broker held while the gateway was away, or what was in flight
 * when it crashed, is delivered again rather than lost. Each message reaches the device model (and so the
 * live view and the alarms) as it is read; only its PUBACK waits for the journal (mqttAcks.ts).
 */
import { hostname } from 'node:os';
import { connect, type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { DeviceLink, IngestSink } from '../model/types.js';
import { decodeMqttPayload, encodeMqttCommand, parseTopic } from '../protocol/mqtt.js';
import { isValidDeviceId, type Command, type Discard } from '../protocol/types.js';
import { Backoff } from '../util/backoff.js';
import { keepAliveClock, type Clock, type TimerHandle } from '../util/clock.js';
import { DEFERRED, OrderedAcks, type AckFailed } from './mqttAcks.js';
import {
  errorText, LogThrottle, redactUrl, sendsInClear, withTimeout, type Transport, type TransportLogger, type TransportStatus,
} from './types.js';

/** ICD §1: the device answers within 500 ms and the sender retries 3 times: a command older than this is stale. */
const COMMAND_EXPIRY_S = 3;
const COMMAND_PUBLISH_TIMEOUT_MS = 2000;

export interface MqttTransportOptions {
  /** mqtt://, mqtts://, ws:// or wss:// broker URL; a password in it never reaches a log or status(). */
  url: string;
  /** Topic root before the device id (ICD §2). */
  prefix?: string;
  /** Must be stable across restarts: the broker keeps the session (and the messages queued in it) under it. */
  clientId?: string;
  username?: string;
  password?: string;
  /** TLS (mqtts://, wss://): PEM contents. `ca` replaces the system's CAs; the broker's name is always checked. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  sink: IngestSink;
  logger: TransportLogger;
  /** After a reconnect with devices already known, data must flow again within this, or we re-subscribe. */
  verifyTimeoutMs?: number;
  /** Reconnect delay: starts here, doubles up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** stop() waits this long for in-flight ingests, so their PUBACKs still go out. */
  stopTimeoutMs?: number;
  /** Broker session lifetime while the gateway is away, s. */
  sessionExpiryS?: number;
  /** 5 (default) or 4 for MQTT 3.1.1-only brokers; the PUBACK waits for the journal either way. */
  protocolVersion?: 4 | 5;
  /** Verify and re-subscribe timers, and the time for log throttling (default: timers that keep the process alive). */
  clock?: Clock;
  /** Overrides clock.now for log throttling only (kept for callers that inject time alone). */
  now?: () => number;
  random?: () => number;
}

type LinkState = 'idle' | 'connecting' | 'subscribing' | 'up' | 'down' | 'stopped';
type FlowCheck = 'none' | 'verifying' | 'flowing' | 'silent';

const DISCARD_LOG_WINDOW_MS = 10_000;
const RESUBSCRIBE_DELAY_MS = 1000;
/** `offline` flags kept for ids the hub does not hold yet (a retained status replayed before its HELLO). */
const OFFLINE_IDS_MAX = 1024;

const noLog = (): void => {};

export class MqttTransport implements Transport {
  readonly kind = 'mqtt' as const;
  private client: MqttClient | null = null;
  private state: LinkState = 'idle';
  private flow: FlowCheck = 'none';
  private flowResubscribed = false;
  private everConnected = false;
  private lostSinceUp = false;
  private reconnects = 0;
  private attempts = 0;
  private lastError: string | null = null;
  private lastLoggedError: string | null = null;
  private stillRetryingLogged = false;
  /** Messages since the last CONNACK: a resumed session may deliver its queue before the SUBACK. */
  private messagesSinceConnect = 0;
  private verifyTimer: TimerHandle | null = null;
  private resubscribeTimer: TimerHandle | null = null;
  /** Devices that sent a frame through this transport: told `reconnected` after a broker outage. */
  private readonly known = new Set<string>();
  /** PUBACKs waiting for their messages to be durable, released in arrival order. */
  private readonly acks_ = new OrderedAcks();
  private readonly ackFailed: AckFailed = (err, topic, stream) => this.onIngestFailed(stream, topic, err);
  private readonly links = new Map<string, DeviceLink>();
  /** Devices whose latest `status` said offline. */
  private readonly offline = new Set<string>();
  private readonly prefix: string;
  private readonly source: string;
  private readonly backoff: Backoff;
  private readonly discardLog: LogThrottle;
  private readonly log: TransportLogger;
  private readonly clock: Clock;

  constructor(private readonly opts: MqttTransportOptions) {
    this.clock = opts.clock ?? keepAliveClock;
    this.prefix = (opts.prefix ?? 'msc/v1').replace(/\/+$/, '');
    this.source = redactUrl(opts.url);
    this.log = opts.logger.child({ transport: 'mqtt', source: this.source });
    this.backoff = new Backoff({ initialMs: opts.initialBackoffMs ?? 1000, maxMs: opts.maxBackoffMs ?? 5000, random: opts.random });
    this.discardLog = new LogThrottle(DISCARD_LOG_WINDOW_MS, opts.now ?? (() => this.clock.now()));
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'connecting';
    const options: IClientOptions = {
      protocolVersion: this.opts.protocolVersion ?? 5,
      clientId: this.opts.clientId ?? `msc-gateway-${hostname()}`,
      username: this.opts.username,
      password: this.opts.password,
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
      ...(this.opts.cert ? { cert: this.opts.cert } : {}),
      ...(this.opts.key ? { key: this.opts.key } : {}),
      // Explicit: a broker whose certificate does not match its name or CA is not ours (no fallback to plain).
      rejectUnauthorized: true,
      // A persistent session: QoS 1 messages published while we are away are queued by the broker (ICD §2).
      clean: false,
      // MQTT 5: the session outlives a restart by a day; MQTT 3.1.1 brokers keep clean:false sessions by their own rules.
      ...((this.opts.protocolVersion ?? 5) === 5 ? { properties: { sessionExpiryInterval: this.opts.sessionExpiryS ?? 86_400 } } : {}),
      reconnectPeriod: this.backoff.next(),
      // A refused CONNACK (bad credentials, broker starting) is retried like a refused socket: never give up.
      reconnectOnConnackError: true,
      // We subscribe ourselves after EVERY connect (onConnect); mqtt.js's resubscribe would only repeat it
      // when the session was lost, sending the retained HELLOs twice.
      resubscribe: false,
      // mqtt.js logs through `debug` a few times per packet; even switched off, each call allocates its
      // arguments (5 % of what ingest allocated per message). DEBUG=mqttjs* still gets its output.
      ...(/mqttjs/.test(process.env.DEBUG ?? '') ? {} : { log: noLog }),
    };
    if (this.opts.password !== undefined && sendsInClear(this.opts.url)) {
      this.log.warn('MQTT password sent without TLS to a broker off this machine: use mqtts:// (docs/engineer.md)');
    }
    const client = connect(this.opts.url, options);
    this.client = client;
    client.on('connect', (connack) => this.onConnect(client, connack));
    client.on('close', () => this.onClose(client));
    client.on('error', (err) => this.onError(client, err));
    client.on('reconnect', () => this.onReconnecting(client));
    // mqtt.js reads the next packet only after handleMessage calls back and then sends the PUBACK: a QoS 1
    // message calls back at once with DEFERRED (no PUBACK from mqtt.js) and its PUBACK goes out from
    // OrderedAcks once the journal has it, so the next message never waits for the disk (mqttAcks.ts).
    client.handleMessage = (packet: IPublishPacket, callback: (err?: Error) => void) => {
      if (this.state === 'stopped') return; // never acked: the broker delivers it again next time
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      const durable = this.onMessage(packet.topic, payload, packet.retain);
      const stream = client.stream;
      if (packet.qos === 1 && packet.messageId !== undefined && stream) {
        this.acks_.defer(stream, packet.messageId, durable, this.ackFailed, packet.topic);
        callback(DEFERRED);
        return;
      }
      if (packet.qos === 0) {
        // QoS 0 telemetry (ICD §2 allows it) has no ack to hold.
        durable.catch((err: unknown) => this.logIngestFailure(packet.topic, err));
        callback();
        return;
      }
      // QoS 2 (the ICD uses 0 and 1): mqtt.js' own flow, held until durable.
      durable.then(() => callback(), (err: unknown) => this.onIngestFailed(stream, packet.topic, err));
    };
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'idle') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    this.clearTimers();
    const client = this.client;
    if (!client) return;
    const limit = this.opts.stopTimeoutMs ?? 3000;
    // Let the journal take what was received so its PUBACKs go out; what is not acked is redelivered next start.
    await withTimeout(this.acks_.idle(), limit);
    const graceful = client.connected && Object.keys(client.outgoing).length === 0;
    await withTimeout(new Promise<void>((resolve) => client.end(!graceful, {}, () => resolve())), limit);
    this.client = null;
  }

  status(): TransportStatus {
    return {
      kind: 'mqtt',
      source: this.source,
      up: this.state === 'up',
      detail: this.describe(),
      reconnects: this.reconnects,
      lastError: this.lastError,
    };
  }

  /** QoS 1 messages received and waiting for durability, and PUBACKs sent. */
  acks(): { pending: number; acked: number } {
    return { pending: this.acks_.pending, acked: this.acks_.acked };
  }

  private describe(): string {
    switch (this.state) {
      case 'idle': return 'not started';
      case 'stopped': return 'stopped';
      case 'connecting': return 'connecting to broker';
      case 'down': return `broker unreachable, retrying (attempt ${this.attempts})`;
      case 'subscribing': return 'connected, subscribing';
      case 'up':
        switch (this.flow) {
          case 'verifying': return 'subscribed, waiting for data after reconnect';
          case 'silent': return `subscribed, but no data within ${this.verifyTimeoutMs()} ms after reconnect (re-subscribed)`;
          default: return 'subscribed, data flowing';
        }
    }
  }

  private verifyTimeoutMs(): number {
    return this.opts.verifyTimeoutMs ?? 10_000;
  }

  private onConnect(client: MqttClient, connack: IConnackPacket): void {
    if (this.client !== client || this.state === 'stopped') return;
    // No Nagle: a PUBACK or a command must not wait for the broker's TCP ack of the previous packet.
    (client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined)?.setNoDelay?.(true);
    if (this.everConnected) {
      this.reconnects++;
      this.log.info({ tries: this.attempts, sessionPresent: connack.sessionPresent },
        `MQTT broker reconnected after ${this.attempts} tries`);
    } else {
      this.log.info({ sessionPresent: connack.sessionPresent }, 'connected to MQTT broker');
    }
    this.everConnected = true;
    this.attempts = 0;
    this.messagesSinceConnect = 0;
    this.lastError = null;
    this.lastLoggedError = null;
    this.stillRetryingLogged = false;
    this.backoff.reset();
    client.options.reconnectPeriod = this.backoff.next();
    this.state = 'subscribing';
    this.subscribe(client);
  }

  private subscribe(client: MqttClient): void {
    // Not relying on sessionPresent: a broker restarted without persistence forgets the subscription while
    // a client may still believe in it. No-local: our own `cmd` publications do not come back.
    const filter = `${this.prefix}/+/#`;
    client.subscribe(filter, { qos: 1, nl: true }, (err) => {
      if (this.client !== client || this.state === 'stopped' || !client.connected) return;
      if (err) {
        this.lastError = `subscribe ${filter}: ${errorText(err)}`;
        this.log.error({ err: this.lastError }, 'subscription refused; retrying');
        this.resubscribeTimer = this.clock.setTimeout(() => this.subscribe(client), RESUBSCRIBE_DELAY_MS);
        return;
      }
      const wasUp = this.state === 'up';
      this.state = 'up';
      if (!wasUp) this.onSubscribed(client);
    });
  }

  private onSubscribed(client: MqttClient): void {
    this.log.info({ filter: `${this.prefix}/+/#` }, 'subscribed');
    this.flowResubscribed = false;
    if (this.lostSinceUp) {
      for (const id of this.known) this.opts.sink.reconnected(id);
    }
    this.lostSinceUp = false;
    if (this.known.size > 0 && this.messagesSinceConnect === 0) this.verifyFlow(client);
    else this.flow = this.known.size > 0 ? 'flowing' : 'none';
  }

  /** "Re-subscribes after every reconnect and verifies data flows again". */
  private verifyFlow(client: MqttClient): void {
    this.flow = 'verifying';
    this.clock.clearTimeout(this.verifyTimer);
    this.verifyTimer = this.clock.setTimeout(() => {
      this.verifyTimer = null;
      if (this.client !== client || this.state !== 'up' || this.flow !== 'verifying') return;
      this.flow = 'silent';
      this.log.warn({ devices: [...this.known], timeoutMs: this.verifyTimeoutMs() },
        this.flowResubscribed ? 'still no data after re-subscribing' : 'no data after reconnect; re-subscribing');
      if (this.flowResubscribed) return;
      this.flowResubscribed = true;
      this.subscribe(client);
      this.verifyFlow(client);
    }, this.verifyTimeoutMs());
  }

  private onClose(client: MqttClient): void {
    if (this.client !== client || this.state === 'stopped') return;
    this.clearTimers();
    // Devices are not marked lost here: they may be fine behind a broker we cannot reach; silence is the
    // alarm engine's COMM_LOSS to judge.
    if (this.state === 'up' || this.state === 'subscribing') {
      this.lostSinceUp = this.state === 'up' || this.lostSinceUp;
      const reason = this.lastError ?? 'connection closed';
      this.log.warn({ reason }, `MQTT broker connection lost: ${reason}; reconnecting`);
      this.lastLoggedError = reason;
    }
    this.state = 'down';
  }

  private onError(client: MqttClient, err: Error): void {
    if (this.client !== client || this.state === 'stopped') return;
    const reason = errorText(err);
    this.lastError = reason;
    if (this.state === 'up' || reason === this.lastLoggedError) return; // a loss is logged by onClose
    this.log.warn({ reason }, this.everConnected
      ? `MQTT broker still unavailable: ${reason}`
      : `MQTT broker unavailable: ${reason}; retrying`);
    this.lastLoggedError = reason;
  }

  private onReconnecting(client: MqttClient): void {
    if (this.client !== client || this.state === 'stopped') return;
    this.attempts++;
    // mqtt.js reads reconnectPeriod each time it arms its timer: this makes its fixed period a capped backoff.
    client.options.reconnectPeriod = this.backoff.next();
    if (this.backoff.capped && !this.stillRetryingLogged) {
      this.log.info(`MQTT broker still unavailable, still retrying every ${this.opts.maxBackoffMs ?? 5000} ms`);
      this.stillRetryingLogged = true;
    }
  }

  private clearTimers(): void {
    this.clock.clearTimeout(this.verifyTimer);
    this.clock.clearTimeout(this.resubscribeTimer);
    this.verifyTimer = null;
    this.resubscribeTimer = null;
  }

  /**
   * Decodes one message and applies it to the device model now, in arrival order (the sink applies
   * synchronously); resolves when it is durable.
   */
  private onMessage(topic: string, payload: Buffer, retained: boolean): Promise<void> {
    this.messagesSinceConnect++;
    if (this.flow === 'verifying' || this.flow === 'silent') this.flow = 'flowing';
    const parsed = parseTopic(this.prefix, topic);
    if (!parsed) {
      // Counted on the device when the id is usable; the hub counts ids it does not know under the broker.
      const rest = topic.startsWith(`${this.prefix}/`) ? topic.slice(this.prefix.length + 1) : '';
      const candidate = rest.split('/')[0] ?? '';
      const deviceId = isValidDeviceId(candidate) ? candidate : null;
      this.discard(deviceId, topic, {
        type: 'discard', reason: 'unknown_type', raw: payload.toString('utf8').slice(0, 128), detail: `unknown topic ${topic}`,
      });
      return Promise.resolve();
    }
    if (parsed.kind === 'cmd') return Promise.resolve(); // commands to a device; another gateway's, or ours
    const { deviceId, kind } = parsed;
    const { frames, discards } = decodeMqttPayload(kind, payload, deviceId);
    // A payload that does not decode now never will: count it and let the PUBACK go.
    for (const d of discards) this.discard(deviceId, topic, d);
    if (frames.length === 0) return Promise.resolve();
    const sink = this.opts.sink;
    const first = frames[0];
    if (first.type === 'STATUS') {
      if (first.online) this.offline.delete(deviceId);
      else {
        // Anyone may publish `offline` under any id: the set stays bounded (losing a flag costs one replayed
        // HELLO being taken for a sign of life until the console's silence is noticed).
        if (this.offline.size >= OFFLINE_IDS_MAX && !this.offline.has(deviceId)) this.offline.clear();
        this.offline.add(deviceId);
      }
    }
    if (frames.length === 1 && first.type === 'STATUS' && !first.online) {
      sink.linkDown(deviceId, 'device status offline');
      return Promise.resolve();
    }
    let durable: Promise<void>;
    try {
      durable = sink.ingest(deviceId, frames, this.linkFor(deviceId));
    } catch (err) {
      return Promise.reject(err);
    }
    // The hub admits a console only after its HELLO (or when its journal knows it): ids it refused leave no
    // state here either, whoever invents them.
    if (sink.has && !sink.has(deviceId)) {
      this.links.delete(deviceId);
      return durable;
    }
    this.known.add(deviceId);
    // The broker replays retained `hello` and `status` on subscribe in no fixed order: a dead console's
    // stored HELLO is not a sign of life, so its stored `offline` (ICD §2 last will) stays the last word.
    if (kind === 'hello' && retained && this.offline.has(deviceId)) sink.linkDown(deviceId, 'device status offline');
    return durable;
  }

  private onIngestFailed(stream: { destroy(): void } | undefined, topic: string, err: unknown): void {
    this.logIngestFailure(topic, err);
    // No PUBACK: drop the connection that carried it so the broker delivers the message again on the resumed
    // session (MQTT 5 §4.4) instead of waiting behind a message we will never acknowledge.
    stream?.destroy();
  }

  private logIngestFailure(topic: string, err: unknown): void {
    const admitted = this.discardLog.admit(`ingest-failed|${topic}`);
    if (admitted) this.log.error({ topic, err: errorText(err), suppressed: admitted.suppressed }, 'ingest failed');
  }

  private discard(deviceId: string | null, topic: string, d: Discard): void {
    // Counted under the broker, not the topic: topics come from the outside (bounded maps); the log names the topic.
    this.opts.sink.discard(deviceId, this.source, d);
    const admitted = this.discardLog.admit(`${deviceId ?? '?'}|${d.reason}`);
    if (admitted) {
      this.log.warn({ device: deviceId, topic, reason: d.reason, detail: d.detail, raw: d.raw, suppressed: admitted.suppressed },
        'MQTT payload discarded');
    }
  }

  private linkFor(deviceId: string): DeviceLink {
    let link = this.links.get(deviceId);
    if (!link) {
      link = { kind: 'mqtt', source: this.source, send: (cmd) => this.sendTo(deviceId, cmd) };
      this.links.set(deviceId, link);
    }
    return link;
  }

  private async sendTo(deviceId: string, cmd: Command): Promise<void> {
    const client = this.client;
    if (!client || !client.connected || this.state === 'stopped') {
      throw new Error(`MQTT ${this.source}: not connected, command ${cmd.cmdId} for ${deviceId} not sent`);
    }
    // A command must not reach a console long after the operator was told TIMEOUT: on MQTT 5 the broker drops it
    // after COMMAND_EXPIRY_S (a console that was away gets no stale SET or START); on 3.1.1 there is no expiry, so the
    // sender's retries and the device's 60 s cmd_id memory are all there is (docs/security.md).
    const v5 = (this.opts.protocolVersion ?? 5) === 5;
    const published = client.publishAsync(`${this.prefix}/${deviceId}/cmd`, encodeMqttCommand(cmd), {
      qos: 1, ...(v5 ? { properties: { messageExpiryInterval: COMMAND_EXPIRY_S } } : {}),
    });
    // The broker's PUBACK may never come (connection dropped mid-publish): the command service must not hang.
    // Real time, whatever the clock: it bounds real network I/O (a test clock never advanced must not hang a send).
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(
        `MQTT ${this.source}: no PUBACK for command ${cmd.cmdId} within ${COMMAND_PUBLISH_TIMEOUT_MS} ms`)), COMMAND_PUBLISH_TIMEOUT_MS);
    });
    try {
      await Promise.race([published, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The live stream `GET /ws`: WebSocket (`ws`, no per-message compression) on the API's HTTP server.
 * A client authenticates (Authorization header, `bearer.<TOKEN>` subprotocol, or a first `auth` message
 * within 5 s), subscribes to devices (or `*`), gets a snapshot, then every telemetry, state, link, alarm and
 * event message. Each bus event is serialised once for all clients; per-client flow control is LiveClient's,
 * snapshots are sent in parts by SnapshotPump. Heartbeats (ping every 10 s, 2 missed pongs) end dead clients;
 * stop() closes everyone with 1001.
 *
 * What one client can cost is bounded: subscribes per connection (token bucket), snapshots queued per
 * connection, and sockets that have not authenticated yet have their own small cap and deadline, so they can
 * never take an authenticated viewer's place. Browsers may only connect from the gateway's own origin or a
 * configured one: the stream takes no cookies, so a foreign page cannot ride on a session, but it could still
 * hold sockets or try tokens from inside the ward network through a viewer's browser.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AlarmInstance } from '../alarms/types.js';
import { RateLimiter } from '../auth/rateLimiter.js';
import { roleAtLeast, type Principal } from '../auth/roles.js';
import { routeAccess, WS_MESSAGE_ROLES } from '../auth/routeRoles.js';
import type { Authenticator } from '../auth/tokenStore.js';
import type { UnauthorizedLog } from '../auth/unauthorizedLog.js';
import type { EventBus } from '../bus.js';
import type { CommandService } from '../control/commandService.js';
import { ERRORS, issuesText, statusOf, zodIssues, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { counter, gauge, type Registry } from '../metrics.js';
import type { DeviceView } from '../model/deviceHub.js';
import { storageUnavailableReason } from '../storage/types.js';
import { LiveClient, type DisconnectReason, type FlowLimits, type Frame } from './liveClient.js';
import * as M from './messages.js';
import { DEFAULT_SNAPSHOT_LIMITS, SnapshotPump, type SnapshotLimits } from './snapshotPump.js';
import { chooseProtocol, originAllowed, rejectUpgrade, upgradeToken } from './upgrade.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

/** More consoles than any ward has; beyond it a client subscribes to "*". */
const MAX_SUBSCRIBED_DEVICES = 1000;

export interface LiveHubOptions {
  bus: EventBus;
  devices: DeviceView;
  tokens: Authenticator;
  logger: Logger;
  /** Active alarms of a device for the snapshot (the alarm engine's list, minus NORMAL). */
  alarmsOf?: (deviceId: string) => AlarmInstance[];
  commands?: Pick<CommandService, 'execute'> | null;
  /** Shared with the HTTP write routes: commands over the stream count against the same budget. */
  limiter?: RateLimiter | null;
  /** Timers (default: systemClock: real time, timers unref'd); ManualClock in tests. */
  clock?: Clock;
  /** Overrides clock.now (kept for callers that inject time alone). */
  now?: () => number;
  path?: string;
  heartbeatMs?: number;
  authTimeoutMs?: number;
  flow?: Partial<FlowLimits>;
  flowTickMs?: number;
  /** Authenticated clients at once. */
  maxClients?: number;
  /** Sockets still waiting to authenticate (auth message); they never count against maxClients. */
  maxUnauthenticated?: number;
  /** Browser origins allowed besides the gateway's own (`http.allowedOrigins`), e.g. a TLS proxy's. */
  allowedOrigins?: readonly string[];
  /** Subscribes per connection: `burst` at once, refilled at `perSecond`. */
  subscribeRate?: { burst: number; perSecond: number };
  /** Snapshot pacing; backlogBytes defaults to the flow's softBytes. */
  snapshot?: Partial<SnapshotLimits>;
  /** Largest client message, bytes. */
  maxPayload?: number;
  /** Counts and logs refused tokens (upgrade 401, `auth` message 4401, no token in time), with the HTTP ones. */
  unauthorized?: UnauthorizedLog | null;
  /** Replay of stored samples (src/live/replay.ts); `replay` messages are refused without it. */
  replay?: { onMessage(client: LiveClient, json: unknown): void } | null;
}

const DEFAULT_FLOW: FlowLimits = { softBytes: 256 * 1024, lowBytes: 64 * 1024, hardBytes: 4 * 1024 * 1024, hardMs: 10_000 };
/** 5 subscribes per 10 s: a screen subscribes once per (re)connect; a loop subscribing is refused, not served. */
const DEFAULT_SUBSCRIBE_RATE = { burst: 5, perSecond: 0.5 };
/** Snapshots not yet fully sent, per connection: a further subscribe waits until they are read. */
const MAX_QUEUED_SNAPSHOTS = 4;

/** A refused command's `commandResult` fields: the HTTP route's status, code and message. */
function commandRefusal(code: ErrorCode, message: string): { status: number; error: ErrorCode; message: string } {
  return { status: statusOf(code), error: code, message };
}
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

type UpgradeRefusal = 'unauthorized' | 'forbidden' | 'origin' | 'busy' | 'busy_unauthenticated';
const WS_ACCESS = routeAccess('GET', '/ws');

export class LiveHub {
  private wss: WebSocketServer | null = null;
  private server: Server | null = null;
  private readonly clients = new Set<LiveClient>();
  /** Connected, not authenticated yet (a subset of clients). */
  private readonly unauthenticated = new Set<LiveClient>();
  private readonly subscribeBuckets = new WeakMap<LiveClient, RateLimiter>();
  private readonly snapshots: SnapshotPump;
  private readonly allowedOrigins: ReadonlySet<string>;
  private readonly subscribeRate: { burst: number; perSecond: number };
  private nextId = 1;
  private heartbeat: TimerHandle | null = null;
  private flowTick: TimerHandle | null = null;
  private readonly now: () => number;
  private readonly clock: Clock;
  private readonly flow: FlowLimits;
  readonly stats = { conflations: 0, dropped: 0, sent: 0 };
  private readonly disconnects: Record<DisconnectReason, number> = {
    closed: 0, heartbeat: 0, slow: 0, auth: 0, auth_timeout: 0, busy: 0, revoked: 0, stopping: 0, error: 0,
  };
  private readonly clientErrors: Record<string, number> = {};
  private readonly rejectedUpgrades: Record<UpgradeRefusal, number> = { unauthorized: 0, forbidden: 0, origin: 0, busy: 0, busy_unauthenticated: 0 };

  constructor(private readonly opts: LiveHubOptions) {
    this.clock = opts.clock ?? systemClock;
    this.now = opts.now ?? (() => this.clock.now());
    this.flow = { ...DEFAULT_FLOW, ...opts.flow };
    this.snapshots = new SnapshotPump({
      devices: opts.devices, alarmsOf: opts.alarmsOf,
      limits: { ...DEFAULT_SNAPSHOT_LIMITS, backlogBytes: this.flow.softBytes, ...opts.snapshot },
    });
    this.allowedOrigins = new Set(opts.allowedOrigins ?? []);
    this.subscribeRate = { ...DEFAULT_SUBSCRIBE_RATE, ...opts.subscribeRate };
  }

  /** Attaches to the API's HTTP server (fastify's `app.server`) and starts relaying the bus. */
  start(server: Server): void {
    if (this.wss) return;
    this.server = server;
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: this.opts.maxPayload ?? 64 * 1024,
      handleProtocols: chooseProtocol,
    });
    server.on('upgrade', this.onUpgrade);
    this.subscribeBus();
    this.heartbeat = this.clock.setInterval(() => this.beat(), this.opts.heartbeatMs ?? 10_000);
    this.flowTick = this.clock.setInterval(() => this.tickFlow(), this.opts.flowTickMs ?? 50);
  }

  /** Closes every client with 1001 (going away) and detaches. Safe to call twice. */
  async stop(): Promise<void> {
    this.opts.bus.removeOwner(this);
    this.snapshots.stop();
    this.clock.clearInterval(this.heartbeat);
    this.clock.clearInterval(this.flowTick);
    this.heartbeat = this.flowTick = null;
    this.server?.off('upgrade', this.onUpgrade);
    this.server = null;
    const wss = this.wss;
    this.wss = null;
    if (!wss) return;
    const closed = [...this.clients].map((c) => new Promise<void>((resolve) => {
      if (c.ws.readyState === c.ws.CLOSED) return resolve();
      c.ws.once('close', () => resolve());
      this.disconnect(c, 'stopping', 1001, 'gateway stopping');
    }));
    // Real time, whatever the clock: this bounds real sockets, and a test clock never advanced must not hold stop().
    const deadline = new Promise<void>((r) => setTimeout(r, 1000).unref());
    await Promise.race([Promise.all(closed), deadline]);
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
    await new Promise<void>((r) => wss.close(() => r()));
  }

  get clientCount(): number {
    return this.clients.size;
  }

  private get authenticatedCount(): number {
    return this.clients.size - this.unauthenticated.size;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== (this.opts.path ?? '/ws')) {
      // Nobody else serves upgrades on this server: answer instead of leaving the socket hanging.
      if (this.server && this.server.listenerCount('upgrade') === 1) rejectUpgrade(socket, 'not_found', 'no WebSocket here');
      return;
    }
    // A page on another origin is refused before its token is even looked at. No Origin: not a browser.
    if (!originAllowed(req, this.allowedOrigins)) {
      this.opts.logger.debug({ origin: String(req.headers.origin).slice(0, 200), host: req.headers.host }, 'live stream: foreign origin refused');
      return this.reject(socket, 'origin', 'forbidden_origin', 'WebSocket from another origin (http.allowedOrigins)');
    }
    const token = upgradeToken(req);
    const source = req.socket.remoteAddress;
    let principal: Principal | null = null;
    if (token !== null) {
      principal = this.opts.tokens.authenticate(token);
      if (!principal) {
        this.refused(source, 'unknown token');
        return this.reject(socket, 'unauthorized', 'unauthorized', 'unknown token');
      }
      if (WS_ACCESS === null || WS_ACCESS === 'open' || !roleAtLeast(principal.role, WS_ACCESS)) {
        return this.reject(socket, 'forbidden', 'forbidden', 'the live stream needs role viewer');
      }
      if (this.authenticatedCount >= (this.opts.maxClients ?? 500)) return this.reject(socket, 'busy', 'busy', 'too many live clients');
    } else if (this.unauthenticated.size >= (this.opts.maxUnauthenticated ?? 32)) {
      return this.reject(socket, 'busy_unauthenticated', 'busy',
        'too many connections waiting to authenticate; send the token on the upgrade (Authorization header or bearer subprotocol)');
    }
    this.wss?.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, principal, source));
  };

  private refused(source: string | undefined, reason: string): void {
    this.opts.unauthorized?.record({ transport: 'ws', source, reason, route: this.opts.path ?? '/ws' });
  }

  private reject(socket: Duplex, reason: UpgradeRefusal, error: ErrorCode, message: string): void {
    this.rejectedUpgrades[reason]++;
    rejectUpgrade(socket, error, message);
  }

  private onConnection(ws: WebSocket, principal: Principal | null, source: string | undefined): void {
    const client = new LiveClient(ws, this.nextId++, this.flow, this.stats);
    client.source = source;
    this.clients.add(client);
    ws.on('pong', () => { client.missedPongs = 0; });
    ws.on('message', (data, isBinary) => {
      // A client's message must never take the gateway down (a replay while the journal is failing throws).
      try {
        this.onMessage(client, data as Buffer, isBinary);
      } catch (err) {
        this.opts.logger.error({ err, user: client.principal?.user }, 'live stream: handling a client message failed');
        // As over HTTP: a storage outage says why; a fault's own text stays in the log.
        const storage = storageUnavailableReason(err);
        if (storage !== null) this.clientError(client, 'storage_unavailable', storage);
        else this.clientError(client, 'internal', ERRORS.internal.message);
      }
    });
    ws.on('error', (err) => this.opts.logger.debug({ client: client.id, err: err.message }, 'live client socket error'));
    ws.on('close', () => {
      this.clients.delete(client);
      this.unauthenticated.delete(client);
      this.snapshots.drop(client);
      this.disconnects[client.closing ?? 'closed']++;
    });
    if (principal) {
      this.welcome(client, principal);
    } else {
      this.unauthenticated.add(client);
      const timer = this.clock.setTimeout(() => {
        if (client.principal || client.closing) return;
        this.refused(client.source, 'no token within the authentication timeout');
        this.disconnect(client, 'auth_timeout', 4401, 'authentication required (timed out)');
      }, this.opts.authTimeoutMs ?? 5000);
      ws.once('close', () => this.clock.clearTimeout(timer));
    }
  }

  private welcome(client: LiveClient, principal: Principal): void {
    client.principal = principal;
    client.sendPriority(M.welcomeMessage(principal.user, principal.role, this.opts.heartbeatMs ?? 10_000));
  }

  private clientError(client: LiveClient, code: ErrorCode, message: string, id?: unknown, extra?: Parameters<typeof M.errorMessage>[3]): void {
    this.clientErrors[code] = (this.clientErrors[code] ?? 0) + 1;
    client.sendPriority(M.errorMessage(code, message, id, extra));
  }

  private onMessage(client: LiveClient, data: Buffer, isBinary: boolean): void {
    if (isBinary) return this.clientError(client, 'binary', 'messages are JSON text');
    let json: unknown;
    try {
      json = JSON.parse(data.toString('utf8'));
    } catch {
      return this.clientError(client, 'invalid_json', 'not JSON');
    }
    // A revoked token must not get a command through in the up to heartbeatMs before beat() notices:
    // its stream is refused and ended at its next message.
    if (client.principal && !this.opts.tokens.stillValid(client.principal)) {
      const { type, id } = (json ?? {}) as { type?: unknown; id?: unknown };
      if (type === 'command') {
        client.sendPriority(M.commandResultMessage({
          id: typeof id === 'string' || typeof id === 'number' ? id : undefined, ...commandRefusal('unauthorized', 'token revoked'),
        }));
      }
      return this.disconnect(client, 'revoked', 4401, 'token revoked');
    }
    // Replay has its own messages and per-client state: src/live/replay.ts validates them.
    if ((json as { type?: unknown } | null)?.type === 'replay' && this.opts.replay) {
      if (!client.principal) return this.clientError(client, 'unauthenticated', 'send {"type":"auth","token":...} first');
      if (!roleAtLeast(client.principal.role, WS_MESSAGE_ROLES.replay)) {
        return this.clientError(client, 'forbidden', `replay needs role ${WS_MESSAGE_ROLES.replay}`);
      }
      return this.opts.replay.onMessage(client, json);
    }
    const parsed = M.ClientMessageSchema.safeParse(json);
    if (!parsed.success) {
      const type = (json as { type?: unknown } | null)?.type;
      const known = typeof type === 'string' && Object.hasOwn(WS_MESSAGE_ROLES, type);
      const id = (json as { id?: unknown } | null)?.id;
      if (!known) return this.clientError(client, 'unknown_type', `unknown message type ${JSON.stringify(type)}`, id);
      const issues = zodIssues(parsed.error);
      return this.clientError(client, 'invalid_message', issuesText(issues), id, { issues });
    }
    const msg = parsed.data;
    if (msg.type === 'auth') return this.onAuth(client, msg.token);
    if (!client.principal) return this.clientError(client, 'unauthenticated', 'send {"type":"auth","token":...} first');
    const needs = WS_MESSAGE_ROLES[msg.type];
    if (needs && !roleAtLeast(client.principal.role, needs)) {
      if (msg.type === 'command') {
        return client.sendPriority(M.commandResultMessage({ id: msg.id, ...commandRefusal('forbidden', `commands need role ${needs}`) }));
      }
      return this.clientError(client, 'forbidden', `${msg.type} needs role ${needs}`);
    }
    switch (msg.type) {
      case 'subscribe': return this.onSubscribe(client, msg.devices);
      case 'unsubscribe':
        if (msg.devices === '*') { client.subscribedAll = false; client.devices.clear(); } else for (const d of msg.devices) client.devices.delete(d);
        return;
      case 'ping': return client.sendPriority(M.pongMessage(msg.id, this.now()));
      case 'command': return void this.onCommand(client, msg);
    }
  }

  private onAuth(client: LiveClient, token: string): void {
    if (client.principal) return this.clientError(client, 'already_authenticated', 'this connection is authenticated');
    const principal = this.opts.tokens.authenticate(token);
    if (!principal) {
      this.refused(client.source, 'unknown token');
      return this.disconnect(client, 'auth', 4401, 'unknown token');
    }
    if (WS_ACCESS === null || WS_ACCESS === 'open' || !roleAtLeast(principal.role, WS_ACCESS)) {
      return this.disconnect(client, 'auth', 4403, 'the live stream needs role viewer');
    }
    if (this.authenticatedCount >= (this.opts.maxClients ?? 500)) return this.disconnect(client, 'busy', 1013, 'too many live clients');
    this.unauthenticated.delete(client);
    this.welcome(client, principal);
  }

  /**
   * Live messages start at once; the snapshot follows in parts (SnapshotPump), each device read when its part is
   * sent, so a device's part is never older than a live message sent before it. A subscribe beyond the rate or
   * with snapshots still queued is refused whole (`rate_limited`): the subscription does not change.
   */
  private onSubscribe(client: LiveClient, devices: '*' | string[]): void {
    let bucket = this.subscribeBuckets.get(client);
    if (!bucket) this.subscribeBuckets.set(client, (bucket = new RateLimiter({ ...this.subscribeRate, now: this.now })));
    if (this.snapshots.queued(client) >= MAX_QUEUED_SNAPSHOTS) {
      return this.clientError(client, 'rate_limited', `subscribe refused: ${MAX_QUEUED_SNAPSHOTS} snapshots are still being sent on this connection; read them first`);
    }
    const rate = bucket.take('subscribe');
    if (!rate.ok) {
      const { burst, perSecond } = this.subscribeRate;
      return this.clientError(client, 'rate_limited', `subscribe refused: at most ${burst} at once, then ${perSecond} per second; retry in ${rate.retryAfterMs} ms`,
        undefined, { retryAfterMs: rate.retryAfterMs });
    }
    if (devices === '*') {
      client.subscribedAll = true;
      return this.snapshots.enqueue(client, this.deviceIds());
    }
    const ids: string[] = [];
    for (const d of devices) {
      // A client's subscription set is bounded: ids are the client's own input.
      if (client.devices.size >= MAX_SUBSCRIBED_DEVICES) {
        this.clientError(client, 'too_many_devices', `at most ${MAX_SUBSCRIBED_DEVICES} devices per connection; subscribe to "*" instead`);
        break;
      }
      if (!client.devices.has(d)) { client.devices.add(d); ids.push(d); }
    }
    this.snapshots.enqueue(client, ids);
  }

  private deviceIds(): readonly string[] {
    return this.opts.devices.ids?.() ?? this.opts.devices.list().map((d) => d.id);
  }

  private async onCommand(client: LiveClient, msg: Extract<M.ParsedClientMessage, { type: 'command' }>): Promise<void> {
    const principal = client.principal!;
    const reply = (body: DistributiveOmit<M.CommandReply, 'id'>) => client.sendPriority(M.commandResultMessage({ id: msg.id, ...body }));
    if (!this.opts.commands) return reply(commandRefusal('unavailable', 'commands are not enabled'));
    const rate = this.opts.limiter?.take(principal.user);
    if (rate && !rate.ok) return reply(commandRefusal('too_many_requests', `retry in ${rate.retryAfterMs} ms`));
    try {
      const res = await this.opts.commands.execute(msg.device, { verb: msg.verb, args: msg.args, reason: msg.reason }, principal);
      if (res.ok) reply({ status: 200, cmdId: res.cmdId, result: res.result, detail: res.detail, tries: res.tries });
      else reply(commandRefusal(res.code, res.detail));
    } catch (err) {
      this.opts.logger.error({ err, device: msg.device }, 'live command failed');
      reply(commandRefusal('internal', 'command failed in the gateway'));
    }
  }

  private subscribeBus(): void {
    const { bus } = this.opts;
    // Encoded once per event, shared by every client (serialise each message once for all clients).
    const broadcast = (deviceId: string, text: () => string) => {
      let frame: Frame | null = null;
      for (const c of this.clients) {
        if (!c.wants(deviceId)) continue;
        frame ??= Buffer.from(text(), 'utf8');
        c.sendPriority(frame);
      }
    };
    bus.on(this, 'telemetry', (s) => {
      let frame: Frame | null = null;
      for (const c of this.clients) {
        if (!c.wants(s.deviceId)) continue;
        frame ??= Buffer.from(M.telemetryMessage(s), 'utf8');
        c.sendTelemetry(s.deviceId, frame, () => this.devicesOf(c));
      }
    });
    bus.on(this, 'state', (s) => broadcast(s.deviceId, () => M.stateMessage(s)));
    bus.on(this, 'link', (l) => broadcast(l.deviceId, () => M.linkMessage(l)));
    bus.on(this, 'event', (e) => broadcast(e.deviceId, () => M.eventMessage(e)));
    bus.on(this, 'alarm', (tr) => broadcast(tr.alarm.device, () => M.alarmMessage(tr)));
    bus.on(this, 'audioPause', (p) => broadcast(p.deviceId, () => M.audioPauseMessage(p)));
  }

  private devicesOf(c: LiveClient): string[] {
    return c.subscribedAll ? [...this.deviceIds()] : [...c.devices];
  }

  private tickFlow(): void {
    this.snapshots.kick();
    const now = this.now();
    for (const c of this.clients) {
      if (c.tick(now) === 'too_slow' && !c.closing) {
        this.opts.logger.warn({ client: c.id, user: c.principal?.user, backlog: c.ws.bufferedAmount }, 'live client too slow; disconnecting');
        this.disconnect(c, 'slow', 1013, 'client too slow');
      }
    }
  }

  private beat(): void {
    for (const c of this.clients) {
      if (c.closing) continue;
      if (c.missedPongs >= 2) {
        c.closing = 'heartbeat';
        c.ws.terminate();
        continue;
      }
      if (c.principal && !this.opts.tokens.stillValid(c.principal)) {
        this.disconnect(c, 'revoked', 4401, 'token revoked');
        continue;
      }
      c.missedPongs++;
      try { c.ws.ping(); } catch { /* socket already closing */ }
    }
  }

  /** Close handshake, and a hard cut if the client cannot take even the close frame. */
  private disconnect(c: LiveClient, reason: DisconnectReason, code: number, text: string): void {
    if (c.closing) return;
    c.closing = reason;
    try { c.ws.close(code, text); } catch { /* already closed */ }
    setTimeout(() => c.ws.terminate(), 2000).unref(); // real time, as the stop deadline
  }

  registerMetrics(registry: Registry): void {
    const clients = () => [...this.clients];
    const byKey = (label: string, counts: Record<string, number>) => () =>
      Object.entries(counts).map(([value, n]) => [{ [label]: value }, n] as const);
    gauge(registry, { name: 'msc_ws_clients', help: 'Live-stream clients connected.', read: () => this.clients.size });
    gauge(registry, {
      name: 'msc_ws_conflated_clients', help: 'Live-stream clients receiving conflated telemetry now.',
      read: () => clients().filter((c) => c.conflated).length,
    });
    gauge(registry, {
      name: 'msc_ws_backlog_max_bytes', help: 'Largest socket backlog of any live-stream client now (what the gateway holds for it).',
      read: () => Math.max(0, ...clients().map((c) => c.ws.bufferedAmount)),
    });
    counter(registry, { name: 'msc_ws_conflations_total', help: 'Times a client was switched to conflated telemetry.', read: () => this.stats.conflations });
    counter(registry, {
      name: 'msc_ws_telemetry_dropped_total', help: 'Telemetry messages replaced by a newer sample for a conflated client.', read: () => this.stats.dropped,
    });
    counter(registry, { name: 'msc_ws_messages_sent_total', help: 'Messages queued to live-stream clients.', read: () => this.stats.sent });
    counter(registry, {
      name: 'msc_ws_disconnects_total', help: 'Live-stream disconnects by reason.', labelNames: ['reason'], read: byKey('reason', this.disconnects),
    });
    gauge(registry, {
      name: 'msc_ws_unauthenticated_clients', help: 'Live-stream connections still waiting to authenticate.', read: () => this.unauthenticated.size,
    });
    counter(registry, {
      name: 'msc_ws_rejected_upgrades_total', help: 'WebSocket upgrades refused, by reason (unauthorized, forbidden, origin, busy, busy_unauthenticated).',
      labelNames: ['reason'], read: byKey('reason', this.rejectedUpgrades),
    });
    counter(registry, {
      name: 'msc_ws_snapshot_parts_total', help: 'Snapshot messages sent (a subscribe is answered by one or more parts).',
      read: () => this.snapshots.stats.parts,
    });
    gauge(registry, { name: 'msc_ws_snapshot_clients_waiting', help: 'Clients with snapshot parts still to send.', read: () => this.snapshots.clientsWaiting });
    counter(registry, {
      name: 'msc_ws_snapshot_slices_total', help: 'Turns of the event loop in which the snapshot pump ran (it yields after 4 ms).',
      read: () => this.snapshots.stats.slices,
    });
    gauge(registry, {
      name: 'msc_ws_snapshot_slice_max_seconds', help: 'Longest time the snapshot pump held the event loop in one turn.',
      read: () => this.snapshots.stats.longestSliceMs / 1000,
    });
    counter(registry, { name: 'msc_ws_client_errors_total', help: 'Invalid client messages by code.', labelNames: ['code'], read: byKey('code', this.clientErrors) });
  }
}

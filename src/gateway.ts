/**
 * The composition root: builds every part from its slice of the configuration, starts them
 * in dependency order and stops them in reverse.
 * Data flow: transports -> protocol -> device hub -> alarms -> journal -> forwarder; API and live stream beside.
 */
import { hostname } from 'node:os';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { AlarmEngine } from './alarms/engine.js';
import { AlarmProfileStore } from './alarms/profileStore.js';
import { defaultProfile, loadProfile } from './alarms/rules.js';
import { FileAlarmStore } from './alarms/store.js';
import { alarmProfileRoutes } from './api/alarmProfileRoutes.js';
import { alarmRoutes } from './api/alarmRoutes.js';
import { annotationRoutes } from './api/annotationRoutes.js';
import { auditRoutes } from './api/auditRoutes.js';
import { actorOf, authPlugin } from './api/authPlugin.js';
import { commandRoutes } from './api/commandRoutes.js';
import { RecordPdfRenders, recordRoutes } from './api/recordRoutes.js';
import { historyRoutes } from './api/historyRoutes.js';
import { sessionRoutes } from './api/sessionRoutes.js';
import { signatureRoutes } from './api/signatureRoutes.js';
import { webRoutes } from './api/webRoutes.js';
import { buildServer, type HealthReport } from './api/server.js';
import { AuditLog, type AuditEntry } from './audit/auditLog.js';
import { PendingAudit } from './audit/pendingAudit.js';
import { BusAuditor } from './audit/busAuditor.js';
import { RateLimiter } from './auth/rateLimiter.js';
import { TokenStore } from './auth/tokenStore.js';
import { UnauthorizedLog } from './auth/unauthorizedLog.js';
import { EventBus } from './bus.js';
import type { Config } from './config.js';
import { AnnotationStats, AnnotationStore } from './control/annotations.js';
import { CommandService } from './control/commandService.js';
import { GatewayError } from './errors.js';
import { LiveHub } from './live/liveHub.js';
import { ReplayService } from './live/replay.js';
import type { Logger } from './log.js';
import { addProcessMetrics, counter, gauge, Registry } from './metrics.js';
import { DeviceHub } from './model/deviceHub.js';
import { ConsoleInfoStore } from './record/consoleInfo.js';
import { RecordService } from './record/service.js';
import { RecordCheckpointer } from './record/checkpoint.js';
import { RecordWarmer } from './record/warmer.js';
import { SignatureService } from './record/signing.js';
import { SigningPasswordStore } from './record/signingPasswords.js';
import type { RecordView } from './record/types.js';
import { FleetStatusWriter } from './sessions/fleetStatus.js';
import { SessionService } from './sessions/service.js';
import type { SessionRecord } from './sessions/types.js';
import { InfluxForwarder } from './storage/forwarder.js';
import { HistoryService } from './storage/history.js';
import { Journal } from './storage/journal.js';
import { Retention } from './storage/retention.js';
import { JournalStores } from './storage/stores.js';
import { StorageUnavailableError } from './storage/types.js';
import { MqttTransport } from './transports/mqtt.js';
import { loadMqttSecrets } from './transports/mqttSecrets.js';
import { SerialTransport } from './transports/serial.js';
import type { Transport } from './transports/types.js';
import type { Clock } from './util/clock.js';
import { secureDataDir } from './util/privateFiles.js';

export interface GatewayOptions {
  logger: Logger;
  /** Handed to every part that owns timers; each part's own default (real time) when absent. */
  clock?: Clock;
  /** Overrides clock.now everywhere (kept for callers that inject time alone). */
  now?: () => number;
}

/** What signing needs of the perfusion record (src/record/service.ts RecordService has this shape). */
export interface RecordSource {
  view(rec: SessionRecord): Promise<RecordView>;
  current(rec: SessionRecord): Promise<{ sha256: string }>;
}

export class Gateway {
  readonly bus: EventBus;
  readonly hub: DeviceHub;
  readonly journal: Journal | null;
  readonly alarms: AlarmEngine;
  /** Alarm-limit and rule changes made at run time, kept across restarts. */
  readonly alarmProfiles: AlarmProfileStore;
  readonly forwarder: InfluxForwarder | null;
  readonly retention: Retention | null;
  readonly history: HistoryService | null;
  readonly tokens: TokenStore;
  readonly commands: CommandService;
  readonly live: LiveHub;
  readonly replay: ReplayService;
  readonly transports: Transport[] = [];
  /** Trial session records and exports; null without a journal. */
  readonly sessions: SessionService | null;
  /** Each console's HELLO (model, serial number, firmware) journaled for the perfusion record's header; null without a journal. */
  readonly consoleInfo: ConsoleInfoStore | null;
  /** Perfusion records with their signatures and amendments; null without a journal (see records()). */
  readonly recordService: RecordService | null;
  /** Builds each session's record shortly after it ends, so a long session's record is ready when asked for. */
  private readonly recordWarmer: RecordWarmer | null;
  /** Keeps running sessions' record telemetry checkpoints (src/record/checkpoint.ts). */
  readonly recordCheckpointer: RecordCheckpointer | null;
  /** InfluxDB points for the fleet dashboard; null without InfluxDB. */
  readonly fleetStatus: FleetStatusWriter | null;
  /**
   * The audit trail, in the journal's database. Every command, alarm action, token change and annotation is
   * audited before it takes effect: until the journal opens (and for ever without one) appends throw
   * StorageUnavailableError and those actions are refused with 503.
   */
  readonly audit: AuditLog;
  /** Annotations, in the journal's database: 503 until it opens, like the audit trail. */
  readonly annotations: AnnotationStore;
  readonly annotationStats = new AnnotationStats();
  /** Record PDFs being made (at most two at once) and how requests ended. */
  readonly recordPdfs = new RecordPdfRenders();
  /** Signing passwords (`<dataDir>/signing-passwords.json`, set by `msc-gateway users set-password`). */
  readonly signingPasswords: SigningPasswordStore;
  /** Electronic signatures on session records (audit records `record.signed`); lockout state in the journal. */
  readonly signatures: SignatureService;
  /** Every part kept in the journal's database: given each (re)opened handle, started and stopped in order. */
  private readonly stores: JournalStores;
  /** What `/metrics` serves: every part registers its families here. */
  readonly metrics = new Registry();
  private readonly auditor: BusAuditor;
  private readonly limiter: RateLimiter;
  /** Refused tokens over HTTP and the live stream: one counter, one throttled log. */
  private readonly unauthorized: UnauthorizedLog;
  /** Records of actions already taken, kept in order while the trail cannot be written (pendingAudit.ts). */
  readonly pendingAudit: PendingAudit;
  private server: FastifyInstance | null = null;
  private started = false;
  private stopping: Promise<void> | null = null;
  private readonly now: () => number;
  private readonly startedAt: number;

  constructor(readonly config: Config, private readonly opts: GatewayOptions) {
    const log = opts.logger;
    const clock = opts.clock;
    const now = (this.now = opts.now ?? (clock ? () => clock.now() : Date.now));
    this.startedAt = now();
    const bus = (this.bus = new EventBus({ logger: log.child({ module: 'bus' }), now }));

    this.journal = config.journal
      ? new Journal({
        dataDir: config.dataDir, bus, log: log.child({ module: 'journal' }), now, clock,
        durability: config.durability.mode, syncIntervalMs: config.durability.syncIntervalMs, writerThread: true,
        onCondition: (c) => this.alarms.setExternalCondition({ device: 'gateway', ...c }),
      })
      : null;
    this.hub = new DeviceHub({
      bus, logger: log.child({ module: 'hub' }), now, clock, durability: this.journal, seqMemory: this.journal,
      maxConsoles: config.maxConsoles,
      forgetSilentMs: config.forgetSilentS * 1000,
      onConsoleLimit: (message) => this.alarms.setExternalCondition({
        device: 'gateway', rule: 'CONSOLE_LIMIT', priority: 'MEDIUM', active: message !== null,
        message: message ?? 'no console refused for 5 minutes',
      }),
    });
    this.alarmProfiles = new AlarmProfileStore({
      dataDir: config.dataDir, now, logger: log.child({ module: 'alarm-profile' }),
      base: config.alarms.profile ? loadProfile(config.alarms.profile) : defaultProfile,
    });
    this.alarms = new AlarmEngine({
      bus, devices: this.hub, now, clock, logger: log.child({ module: 'alarms' }),
      profile: this.alarmProfiles.load(), // loaded before the engine runs: it never evaluates a replaced limit
      store: new FileAlarmStore({ dataDir: config.dataDir, clock }),
    });
    this.forwarder = this.journal && config.influx
      ? new InfluxForwarder({
        journal: this.journal, config: { ...config.influx }, log: log.child({ module: 'forwarder' }), now, clock,
        onCondition: (c) => this.alarms.setExternalCondition({ device: 'gateway', ...c }),
      })
      : null;
    this.retention = this.journal
      ? new Retention({
        journal: this.journal, keepDays: config.retention.days, maxBytes: config.retention.maxGiB * 2 ** 30,
        confirmedBy: this.forwarder ? { cursorName: 'influx' } : null, now, clock, log: log.child({ module: 'retention' }),
      })
      : null;
    this.history = this.journal
      ? new HistoryService({ journal: this.journal, influx: config.influx, log: log.child({ module: 'history' }) })
      : null;

    const audit = (this.audit = new AuditLog({ db: null, now }));
    this.annotations = new AnnotationStore({ db: null, audit, now });
    this.tokens = new TokenStore({
      dataDir: config.dataDir, provisioned: config.auth.tokens, audit, logger: log.child({ module: 'tokens' }),
    });
    this.limiter = new RateLimiter(config.auth.rateLimit);
    this.unauthorized = new UnauthorizedLog({ logger: log.child({ module: 'auth' }) });
    this.pendingAudit = new PendingAudit({
      sink: audit, now, clock, logger: log.child({ module: 'audit' }),
      onCondition: (message) => this.alarms.setExternalCondition({
        device: 'gateway', rule: 'AUDIT_PENDING', priority: 'MEDIUM', active: message !== null,
        message: message ?? 'the audit records kept in memory are written',
      }),
    });
    const afterAction = (entry: AuditEntry) => this.pendingAudit.record(entry);
    this.commands = new CommandService({
      bus, hub: this.hub, audit, afterAction, logger: log.child({ module: 'commands' }), now, clock,
      onCondition: (c) => this.alarms.setExternalCondition(c),
    });
    this.auditor = new BusAuditor({
      bus, audit, afterAction, logger: log.child({ module: 'audit' }), sessionOf: (id) => this.hub.get(id)?.sessionId ?? null,
    });
    this.replay = new ReplayService({
      journal: this.journal, history: this.history, annotations: this.annotations, logger: log.child({ module: 'replay' }), now, clock,
    });
    this.live = new LiveHub({
      bus, devices: this.hub, tokens: this.tokens, logger: log.child({ module: 'live' }), now, clock,
      alarmsOf: (device) => this.alarms.list({ state: 'active', device }),
      commands: this.commands, limiter: this.limiter, replay: this.replay, unauthorized: this.unauthorized,
      allowedOrigins: config.http.allowedOrigins,
    });

    this.sessions = this.journal
      ? new SessionService({
        bus, audit, database: () => this.journal!.database(), now, logger: log.child({ module: 'sessions' }),
      })
      : null;
    this.consoleInfo = this.journal
      ? new ConsoleInfoStore({ bus, now, logger: log.child({ module: 'console-info' }) })
      : null;
    this.recordService = this.journal
      ? new RecordService({ database: () => this.journal!.database(), site: { ...config.site }, now })
      : null;
    this.recordWarmer = this.sessions && this.recordService
      ? new RecordWarmer({
        bus, clock, logger: log.child({ module: 'record-warmer' }),
        build: (rec) => this.records().current(rec),
        find: (device, sessionId) => {
          const found = this.sessions!.find(sessionId, device);
          return found.ok ? found.record : null;
        },
      })
      : null;
    this.recordCheckpointer = this.journal
      ? new RecordCheckpointer({
        database: () => this.journal!.database(), now, clock, logger: log.child({ module: 'record-checkpoints' }),
      })
      : null;
    this.signingPasswords = new SigningPasswordStore({ dataDir: config.dataDir, logger: log.child({ module: 'signing-passwords' }), now });
    this.signatures = new SignatureService({
      db: null, audit, passwords: this.signingPasswords, current: (rec) => this.records().current(rec), now,
      logger: log.child({ module: 'signatures' }),
    });
    this.fleetStatus = config.influx
      ? new FleetStatusWriter({
        influx: { ...config.influx }, gateway: hostname(), devices: () => this.hub.list(), now, clock,
        forwarder: () => this.forwarder?.status() ?? null, journal: () => this.journal?.status() ?? null,
        database: () => this.journal?.database() ?? null, logger: log.child({ module: 'fleet-status' }),
      })
      : null;

    // Dependency order: the others audit through the trail; retention waits for the forwarder's confirmed
    // cursor; fleet status reports the forwarder. They stop in reverse, after intake and before the journal.
    this.stores = new JournalStores({ journal: this.journal, logger: log.child({ module: 'stores' }) });
    this.stores.add('audit', this.audit);
    this.stores.add('annotations', this.annotations);
    this.stores.add('sessions', this.sessions);
    this.stores.add('console-info', this.consoleInfo);
    this.stores.add('signatures', this.signatures);
    this.stores.add('forwarder', this.forwarder);
    this.stores.add('retention', this.retention);
    this.stores.add('fleet-status', this.fleetStatus);

    for (const port of config.serial) {
      this.transports.push(new SerialTransport({
        path: port.path, baudRate: port.baudRate, sink: this.hub, logger: log.child({ module: 'serial' }), clock,
      }));
    }
    if (config.mqtt) {
      // Password and TLS files are read here, once: an unreadable one throws a ConfigError naming its key.
      const secrets = loadMqttSecrets(config.mqtt);
      this.transports.push(new MqttTransport({
        url: config.mqtt.url, prefix: config.mqtt.prefix,
        clientId: config.mqtt.clientId ?? `msc-gateway-${hostname()}`,
        username: config.mqtt.username, protocolVersion: config.mqtt.protocolVersion, ...secrets,
        sink: this.hub, logger: log.child({ module: 'mqtt' }), clock,
      }));
    }
    this.registerMetrics();
  }

  /** The bound HTTP address, once started. */
  get httpUrl(): string {
    const addr = this.server?.server.address();
    if (!addr || typeof addr === 'string') throw new Error('gateway not listening');
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return `http://${host}:${addr.port}`;
  }

  get http(): FastifyInstance {
    if (!this.server) throw new Error('gateway not started');
    return this.server;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { config, opts } = this;
    const log = opts.logger;

    // Before anything in it is opened or written: 0700 directory, 0600 files (loose ones tightened, logged).
    secureDataDir(config.dataDir, log.child({ module: 'data-dir' }));

    // Storage first: the hub resolves every ingest against the journal's commit (MQTT PUBACK after it).
    await this.journal?.start();
    await this.stores.start();
    // After the stores have the new handle: what actions already taken left unaudited is written now.
    this.journal?.onOpen(() => this.pendingAudit.flush());
    this.tokens.start();
    this.signingPasswords.start();
    this.alarms.start();
    // The limits in force are not the ones the engineer set: HIGH until an engineer confirms or fixes the profile.
    this.alarmProfiles.onProblem((problem) => this.alarms.setExternalCondition({
      device: 'gateway', rule: 'ALARM_PROFILE', priority: 'HIGH', active: problem !== null,
      message: problem ?? 'alarm profile confirmed or fixed by an engineer',
    }));
    this.auditor.start();
    this.recordWarmer?.start();
    this.recordCheckpointer?.start();
    this.commands.start();
    this.hub.start();

    const deviceKnown = (id: string) => this.deviceSeen(id);
    const plugins: Array<{ plugin: FastifyPluginAsync<any>; opts?: Record<string, unknown> }> = [
      { plugin: authPlugin, opts: { tokens: this.tokens, limiter: this.limiter, unauthorized: this.unauthorized } },
      { plugin: alarmRoutes, opts: { engine: this.alarms, actorOf, auditAvailable: () => this.audit.canAppend && (this.journal?.status().writable ?? false) } },
      { plugin: alarmProfileRoutes, opts: { engine: this.alarms, audit: this.audit, store: this.alarmProfiles, actorOf, deviceKnown } },
      { plugin: commandRoutes, opts: { commands: this.commands } },
      { plugin: annotationRoutes, opts: { annotations: this.annotations, devices: this.hub, stats: this.annotationStats } },
      { plugin: auditRoutes, opts: { audit: this.audit } },
    ];
    if (this.history) plugins.push({ plugin: historyRoutes, opts: { history: this.history, deviceKnown } });
    if (this.sessions) plugins.push({ plugin: sessionRoutes, opts: { sessions: this.sessions } });
    if (this.sessions) {
      const records = { view: (rec: SessionRecord) => this.records().view(rec) };
      plugins.push({ plugin: recordRoutes, opts: { sessions: this.sessions, records, renders: this.recordPdfs } });
      plugins.push({ plugin: signatureRoutes, opts: { sessions: this.sessions, signatures: this.signatures, view: records.view } });
    }
    plugins.push({ plugin: webRoutes, opts: { replay: this.replay, journal: this.journal, deviceKnown } });
    this.server = await buildServer({
      logger: log,
      devices: this.hub,
      health: () => this.health(),
      metrics: this.metrics,
      plugins,
      loopbackOnly: false, // every route but /healthz needs a token
    });
    this.live.start(this.server.server);
    this.replay.start();

    if (this.transports.length === 0) log.warn('no transport configured: give --serial PATH and/or --mqtt URL');
    await this.server.listen({ host: config.http.host, port: config.http.port });
    // A transport that cannot connect yet (port missing, broker down) keeps retrying by itself: never fatal.
    await Promise.all(this.transports.map((t) => t.start()));
    log.info({ http: this.httpUrl, transports: this.transports.map((t) => t.status().source) }, 'msc-gateway started');
  }

  /** Stop intake, drain and persist, close servers. Safe to call twice. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const log = this.opts.logger;
    const step = async (name: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        log.error({ err, step: name }, `shutdown: ${name} failed`);
      }
    };
    await Promise.allSettled(this.transports.map((t) => t.stop()));
    await step('hub', () => this.hub.stop());
    await step('commands', () => this.commands.stop());
    await step('alarms', () => this.alarms.stop());
    await step('auditor', () => this.auditor.stop());
    await step('pending-audit', () => this.pendingAudit.stop());
    await step('record-warmer', () => this.recordWarmer?.stop());
    await step('record-checkpoints', () => this.recordCheckpointer?.stop());
    await step('stores', () => this.stores.stop()); // logs each store's own failure and goes on
    await step('replay', () => this.replay.stop()); // reads the journal: ends before it closes
    await step('journal', () => this.journal?.stop());
    await step('live', () => this.live.stop());
    await step('http', () => this.server?.close());
    await step('tokens', () => this.tokens.stop());
    await step('signing-passwords', () => this.signingPasswords.stop());
    log.info('msc-gateway stopped');
  }

  /**
   * Whether an id names a console this gateway has seen: connected since start, or anything of it in the journal.
   * Per-device routes answer 404 for any other id (commands, annotations and audio pause already did). A journal
   * that cannot be read answers yes: the route's own storage error (503) is then the true answer.
   */
  deviceSeen(id: string): boolean {
    if (this.hub.get(id)) return true;
    if (!this.journal) return false;
    try {
      return this.journal.hasDevice(id);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (err instanceof StorageUnavailableError || (typeof code === 'string' && code.startsWith('SQLITE_'))) return true;
      throw err;
    }
  }

  health(): HealthReport {
    const transports = this.transports.map((t) => t.status());
    const reasons: string[] = [];
    for (const t of transports) if (!t.up) reasons.push(`${t.kind} ${t.source} down: ${t.detail}`);
    const journal = this.journal?.status() ?? null;
    if (journal && !journal.writable) reasons.push(`journal not writable: ${journal.lastError ?? 'unknown error'}`);
    const forwarder = this.forwarder?.status() ?? null;
    if (forwarder && forwarder.seconds > 60) reasons.push(`InfluxDB backlog ${Math.round(forwarder.seconds)} s behind`);
    if (this.pendingAudit.pending > 0) reasons.push(`${this.pendingAudit.pending} audit record(s) of actions taken wait for the audit trail`);
    if (this.alarmProfiles.loadProblem) reasons.push(`alarm profile changes not in force: ${this.alarmProfiles.loadProblem}`);
    if (forwarder?.loopError) reasons.push(`InfluxDB forwarder restarting after an unexpected error: ${forwarder.loopError}`);
    const ready = this.started && (transports.length === 0 || transports.some((t) => t.up)) && (journal?.writable ?? true);
    return {
      status: reasons.length === 0 ? 'ok' : 'degraded',
      live: true,
      ready,
      reasons,
      uptimeS: Math.round((this.now() - this.startedAt) / 1000),
      transports,
      journal,
      forwarder,
      devices: this.hub.list().map((d) => ({ id: d.id, link: d.link, state: d.state })),
    };
  }

  /**
   * The perfusion record: the one instance GET /api/sessions/:id/record[.pdf] show and signatures are bound to.
   * Without a journal there are no sessions, so no route asks.
   */
  private records(): RecordSource {
    if (this.recordService) return this.recordService;
    throw new GatewayError('internal', 'the perfusion record needs the journal', undefined, { missing: 'RecordService' });
  }

  /** The Prometheus text of `/metrics`, as a scrape gets it. */
  metricsText(): Promise<string> {
    return this.metrics.metrics();
  }

  /** Every part's families, the transports' and the process metrics, in the gateway's one registry. */
  private registerMetrics(): void {
    const r = this.metrics;
    for (const part of [this.hub, this.alarms, this.live, this.commands, this.bus, this.pendingAudit, this.annotationStats, this.unauthorized, this.signatures, this.recordPdfs]) {
      part.registerMetrics(r);
    }
    this.journal?.registerMetrics(r);
    this.forwarder?.registerMetrics(r);
    this.recordCheckpointer?.registerMetrics(r);
    const perTransport = (value: (s: ReturnType<Transport['status']>) => number) => () =>
      this.transports.map((t) => t.status()).map((s) => [{ kind: s.kind, source: s.source }, value(s)] as const);
    gauge(r, { name: 'msc_transport_up', help: '1 when the transport is connected.', labelNames: ['kind', 'source'], read: perTransport((s) => (s.up ? 1 : 0)) });
    counter(r, { name: 'msc_transport_reconnects_total', help: 'Transport reconnects.', labelNames: ['kind', 'source'], read: perTransport((s) => s.reconnects) });
    addProcessMetrics(r);
  }
}

/**
 * The composition root (style.md §3, §11): starts services in dependency order, stops them in reverse.
 * Data flow: transports -> protocol -> device hub -> alarms -> journal -> forwarder; API and live stream beside.
 */
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { buildServer, type HealthReport } from './api/server.js';
import { EventBus } from './bus.js';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import { DeviceHub } from './model/deviceHub.js';
import { MqttTransport } from './transports/mqtt.js';
import { SerialTransport } from './transports/serial.js';
import type { Transport } from './transports/types.js';

export interface GatewayOptions {
  logger: Logger;
  now?: () => number;
}

export class Gateway {
  readonly bus = new EventBus();
  readonly hub: DeviceHub;
  readonly transports: Transport[] = [];
  private server: FastifyInstance | null = null;
  private started = false;
  private stopping: Promise<void> | null = null;
  private readonly startedAt: number;

  constructor(readonly config: Config, private readonly opts: GatewayOptions) {
    this.startedAt = (opts.now ?? Date.now)();
    this.hub = new DeviceHub({ bus: this.bus, logger: opts.logger.child({ module: 'hub' }), now: opts.now });
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

    this.hub.start();

    this.server = await buildServer({
      logger: log,
      devices: this.hub,
      health: () => this.health(),
      metrics: () => this.metricsText(),
    });

    for (const port of config.serial) {
      this.transports.push(new SerialTransport({
        path: port.path, baudRate: port.baudRate, sink: this.hub,
        logger: log.child({ module: 'serial', port: port.path }),
      }));
    }
    if (config.mqtt) {
      this.transports.push(new MqttTransport({
        url: config.mqtt.url, prefix: config.mqtt.prefix,
        clientId: config.mqtt.clientId ?? `msc-gateway-${hostname()}`,
        username: config.mqtt.username, password: config.mqtt.password, protocolVersion: config.mqtt.protocolVersion,
        sink: this.hub, logger: log.child({ module: 'mqtt' }),
      }));
    }
    if (this.transports.length === 0) log.warn('no transport configured: give --serial PATH and/or --mqtt URL');

    await this.server.listen({ host: config.http.host, port: config.http.port });
    // A transport that cannot connect yet (port missing, broker down) keeps retrying by itself: never fatal.
    await Promise.all(this.transports.map((t) => t.start()));
    log.info({ http: this.httpUrl, transports: this.transports.map((t) => t.status().source) }, 'msc-gateway started');
  }

  /** Stop intake, drain and persist, close servers (style.md §11). Safe to call twice. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const log = this.opts.logger;
    await Promise.allSettled(this.transports.map((t) => t.stop()));
    this.hub.stop();
    if (this.server) await this.server.close();
    log.info('msc-gateway stopped');
  }

  health(): HealthReport {
    const transports = this.transports.map((t) => t.status());
    const reasons: string[] = [];
    for (const t of transports) if (!t.up) reasons.push(`${t.kind} ${t.source} down: ${t.detail}`);
    const ready = this.started && (transports.length === 0 || transports.some((t) => t.up));
    return {
      status: reasons.length === 0 ? 'ok' : 'degraded',
      live: true,
      ready,
      reasons,
      uptimeS: Math.round(((this.opts.now ?? Date.now)() - this.startedAt) / 1000),
      transports,
      devices: this.hub.list().map((d) => ({ id: d.id, link: d.link, state: d.state })),
    };
  }

  metricsText(): string {
    const lines = [this.hub.metricsText()];
    lines.push('# HELP msc_transport_up 1 when the transport is connected.', '# TYPE msc_transport_up gauge');
    for (const t of this.transports) {
      const s = t.status();
      lines.push(`msc_transport_up{kind="${s.kind}",source="${s.source.replace(/"/g, '\\"')}"} ${s.up ? 1 : 0}`);
    }
    lines.push('# HELP msc_transport_reconnects_total Transport reconnects.', '# TYPE msc_transport_reconnects_total counter');
    for (const t of this.transports) {
      const s = t.status();
      lines.push(`msc_transport_reconnects_total{kind="${s.kind}",source="${s.source.replace(/"/g, '\\"')}"} ${s.reconnects}`);
    }
    return lines.join('\n') + '\n';
  }
}

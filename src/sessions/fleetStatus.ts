/**
 * FleetStatusWriter (Grafana): what the journal's forwarder does not carry but the dashboards
 * show, written to the same InfluxDB every `intervalMs`:
 * - `gateway_device` per console: link, state, session, frame and loss counters (fleet view);
 * - `gateway`: forwarder backlog and journal writability (fleet view);
 * - `annotation`: the team's session annotations, once each, from a cursor kept in the journal database
 *   (session view, as Grafana annotations).
 * Schema: docs/engineer.md, "InfluxDB measurements written for the dashboards". Losing a status point to an
 * InfluxDB outage is harmless (the next one carries the counters); annotations wait behind their cursor.
 */
import { escape } from 'influx';
import type { DeviceSnapshot } from '../model/types.js';
import type { ForwarderStatus } from '../storage/forwarder.js';
import { createInfluxClient, postLines, type InfluxTarget } from '../storage/influxConfig.js';
import { nanos } from '../storage/influxLines.js';
import { readCursor, writeCursors } from '../storage/journalQueries.js';
import type { Db } from '../storage/schema.js';
import type { JournalStatus } from '../storage/types.js';
import { tableExists } from './records.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export interface FleetStatusOptions {
  influx: InfluxTarget;
  gateway: string;
  devices: () => DeviceSnapshot[];
  forwarder: () => ForwarderStatus | null;
  journal: () => JournalStatus | null;
  database: () => Db | null;
  now: () => number;
  /** Timers (default: systemClock: real time, timers unref'd); ManualClock in tests. */
  clock?: Clock;
  intervalMs?: number;
  logger: { warn(obj: object, msg?: string): void };
}

const CURSOR = 'influx-fleet';
const ANNOTATIONS_PER_WRITE = 1_000;

const tag = (s: string) => escape.tag(s.replace(/[\r\n]+/g, ' '));
const str = (s: string) => escape.quoted(s.replace(/[\r\n]+/g, ' '));

export class FleetStatusWriter {
  private readonly target: ReturnType<typeof createInfluxClient>;
  private timer: TimerHandle | null = null;
  private running: Promise<void> | null = null;
  private databaseReady = false;
  private warned = false;

  constructor(private readonly opts: FleetStatusOptions) {
    this.target = createInfluxClient(opts.influx);
  }

  start(): void {
    if (this.timer) return;
    this.timer = (this.opts.clock ?? systemClock).setInterval(() => void this.tick(), this.opts.intervalMs ?? 10_000);
    void this.tick();
  }

  async stop(): Promise<void> {
    (this.opts.clock ?? systemClock).clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One write now (tests and the first tick); overlapping ticks are skipped. */
  tick(): Promise<void> {
    this.running ??= this.write().finally(() => (this.running = null));
    return this.running;
  }

  /** Line protocol for the status of this instant (pure but for the injected sources). */
  statusLines(at: number): string[] {
    const gw = tag(this.opts.gateway);
    const lines: string[] = [];
    for (const d of this.opts.devices()) {
      const c = d.counters;
      const fields = [
        `link=${str(d.link)}`, `link_up=${d.link === 'connected' ? 1 : 0}i`, `state=${str(d.state ?? 'UNKNOWN')}`,
        `frames=${c.frames}i`, `frames_lost=${c.framesLost}i`, `seq_gaps=${c.seqGaps}i`, `duplicates=${c.duplicates}i`,
        `reconnects=${c.reconnects}i`,
        // Share of frames lost of frames expected since the gateway started (received + lost).
        `loss_pct=${c.frames + c.framesLost > 0 ? (100 * c.framesLost) / (c.frames + c.framesLost) : 0}`,
      ];
      if (d.sessionId) fields.push(`session=${str(d.sessionId)}`);
      if (d.clockOffsetMs !== null) fields.push(`clock_offset_ms=${d.clockOffsetMs}`);
      lines.push(`gateway_device,device=${tag(d.id)},gateway=${gw} ${fields.join(',')} ${nanos(at, 0)}`);
    }
    const f = this.opts.forwarder();
    const j = this.opts.journal();
    const fields: string[] = [];
    if (f) fields.push(`backlog_lines=${f.lines}i`, `backlog_seconds=${f.seconds}`, `influx_connected=${f.connected}`);
    if (j) fields.push(`journal_writable=${j.writable}`, `journal_pending=${j.pending}i`, `journal_dropped=${j.droppedWhileFailed}i`);
    fields.push(`devices=${this.opts.devices().length}i`);
    lines.push(`gateway,gateway=${gw} ${fields.join(',')} ${nanos(at, 0)}`);
    return lines;
  }

  private async write(): Promise<void> {
    try {
      if (!this.databaseReady) {
        await this.target.client.createDatabase(this.target.database);
        this.databaseReady = true;
      }
      await postLines(this.target, this.statusLines(this.opts.now()).join('\n'), 10_000);
      await this.writeAnnotations();
      this.warned = false;
    } catch (err) {
      // The forwarder alarms InfluxDB outages (STORAGE_BACKLOG); one warning here is enough.
      if (!this.warned) this.opts.logger.warn({ err: String(err), target: this.target.redacted }, 'fleet status: InfluxDB write failed');
      this.warned = true;
    }
  }

  private async writeAnnotations(): Promise<void> {
    const db = this.opts.database();
    if (!db || !tableExists(db, 'annotations')) return;
    const after = readCursor(db, CURSOR, 'annotation');
    const rows = db.prepare('SELECT * FROM annotations WHERE id > ? ORDER BY id LIMIT ?').all(after, ANNOTATIONS_PER_WRITE) as Array<{
      id: number; device: string; session: string | null; t: number; kind: string; subtype: string | null; text: string; user: string;
    }>;
    if (rows.length === 0) return;
    const lines = rows.map((a) => {
      const fields = [`text=${str(a.text)}`, `user=${str(a.user)}`, `annotation_id=${a.id}i`];
      if (a.subtype) fields.push(`subtype=${str(a.subtype)}`);
      if (a.session) fields.push(`session=${str(a.session)}`);
      // Tag `id`: two annotations of one kind at the same millisecond must stay two points.
      return `annotation,device=${tag(a.device)},kind=${tag(a.kind)},id=${a.id} ${fields.join(',')} ${nanos(a.t, 0)}`;
    });
    await postLines(this.target, lines.join('\n'), 10_000);
    writeCursors(db, CURSOR, { annotation: rows[rows.length - 1].id });
  }
}

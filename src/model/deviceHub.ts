/**
 * The device model: one record per console, fed by every transport (IngestSink), read by the API, the alarm
 * engine and the live stream (DeviceView). It turns decoded frames into bus events; it does no I/O itself.
 */
import type { EventBus, LinkState, TelemetrySample } from '../bus.js';
import type { Logger } from '../log.js';
import { counter, gauge, oncePerScrape, type Registry } from '../metrics.js';
import type { ChannelValues, DeviceFrame, Discard, DiscardReason, HelloFrame, SessionState } from '../protocol/types.js';
import { ICD_CHANNELS, MAX_CHANNELS_PER_CONSOLE, isSequenced, isValidDeviceId } from '../protocol/types.js';
import { LogThrottle } from '../util/logThrottle.js';
import { SequenceTracker, type SeqBaseline } from './sequence.js';
import type { ChannelReading, DeviceLink, DeviceSnapshot, IngestSink } from './types.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export interface DeviceView {
  get(id: string): DeviceSnapshot | undefined;
  list(): DeviceSnapshot[];
  /** Every device id, sorted, without building snapshots (the live stream pages through them). */
  ids?(): readonly string[];
}

/** Where the hub waits for durability before it resolves an ingest (the journal's group commit). */
export interface Durability {
  committed(): Promise<void>;
}
/**
 * What the journal remembers of a device across a gateway restart: its last seq and when it was received (to
 * count what a restart lost), and so that it was a console before (admitted without a new HELLO).
 */
export interface SeqMemory {
  lastSeq(deviceId: string): SeqBaseline | null;
}

export interface DeviceHubOptions {
  bus: EventBus;
  logger: Logger;
  /** Timers (default: systemClock: real time, timers unref'd); ManualClock in tests. */
  clock?: Clock;
  /** Overrides clock.now (kept for callers that inject time alone). */
  now?: () => number;
  durability?: Durability | null;
  seqMemory?: SeqMemory | null;
  /** How often link silence is checked (gateway clock). */
  tickMs?: number;
  /** Consoles the hub keeps at most; a new one beyond is refused (config `maxConsoles`). */
  maxConsoles?: number;
  /**
   * A console silent this long while not in a session (no session, IDLE or ENDED) is forgotten in memory (config
   * `forgetSilentS`; its journal rows stay): its record, metrics and alarms go, and a HELLO brings it back. 0: never.
   */
  forgetSilentMs?: number;
  /** CONSOLE_LIMIT raised (message) when a new console is refused beyond maxConsoles, cleared (null) 5 min later. */
  onConsoleLimit?: (message: string | null) => void;
}

export const DEFAULT_MAX_CONSOLES = 64;
export const DEFAULT_FORGET_SILENT_MS = 24 * 3600_000;
/** CONSOLE_LIMIT clears this long after the last refusal. */
const CONSOLE_LIMIT_CLEAR_MS = 5 * 60_000;
const LOG_WINDOW_MS = 10_000;
/** Ids the journal does not know, remembered so a refused id costs no journal read per frame; cleared when full. */
const UNKNOWN_IDS_MAX = 4096;

/** Silence after which a running device's link is `lost`: max(3 s, 3 telemetry periods) (COMM_LOSS). */
export const SILENCE_MIN_MS = 3000;
/**
 * In IDLE and ENDED a device may send only its `S` keep-alive every 5 s (ICD §1): two missed keep-alives plus
 * a margin mean the link is gone whatever the state.
 */
export const SILENCE_IDLE_MS = 11_000;
const QUIET_STATES: ReadonlySet<SessionState> = new Set(['IDLE', 'ENDED']);
/**
 * Clock offset memory (docs/alarms.md, "DATA_DELAYED"): the least-delayed sample of the last 10 minutes, kept as
 * the largest (device − gateway) of each 30 s window. A short memory (5-10 s) followed a delay that builds up
 * (a broker backlog, a stalled gateway) and so could never show it; 10 minutes is long enough for any alarm to
 * have been raised first, and short enough that a device clock set back (CMD SYNC) is picked up the same shift.
 */
const OFFSET_WINDOW_MS = 30_000;
const OFFSET_WINDOWS = 20;
const PERIOD_RING = 16;

interface DeviceRecord {
  snap: DeviceSnapshot;
  link: DeviceLink;
  seq: SequenceTracker;
  /** Largest (device − gateway) per window, newest last (latency only lowers it): see OFFSET_WINDOW_MS. */
  offsetWindows: number[];
  offsetWindowStart: number;
  lastTelemetryT: number | null;
  periods: number[];
  periodIdx: number;
  deviceOnline: boolean;
  /** Channel keys outside ICD_CHANNELS this console has used (at most MAX_CHANNELS_PER_CONSOLE − ICD's). */
  extraChannels: Set<string>;
  /** Gateway time the record was made (a console that never sent a frame is forgotten from then). */
  createdAt: number;
}

const EXTRA_CHANNELS_MAX = MAX_CHANNELS_PER_CONSOLE - ICD_CHANNELS.size;

export class DeviceHub implements IngestSink, DeviceView {
  private readonly devices = new Map<string, DeviceRecord>();
  /** ids() until a device is added; never mutated once handed out. */
  private sortedIds: readonly string[] | null = null;
  /** Gateway time of the last console refused beyond maxConsoles while CONSOLE_LIMIT stands, else null. */
  private consoleLimitAt: number | null = null;
  private forgotten = 0;
  /** Discards from sources that have no identity yet (a serial port before HELLO). */
  private readonly anonymousDiscards = new Map<string, Record<string, number>>();
  /** Ids the journal was asked about and does not know (see UNKNOWN_IDS_MAX). */
  private readonly unknownIds = new Set<string>();
  /** The last journal read failed (rememberedSeq). */
  private journalFailed = false;
  private timer: TimerHandle | null = null;
  private readonly now: () => number;
  private readonly clock: Clock;
  private readonly logThrottle: LogThrottle;

  constructor(private readonly opts: DeviceHubOptions) {
    this.clock = opts.clock ?? systemClock;
    this.now = opts.now ?? (() => this.clock.now());
    this.logThrottle = new LogThrottle(LOG_WINDOW_MS, this.now);
  }

  start(): void {
    if (this.timer) return;
    this.timer = this.clock.setInterval(() => this.checkSilence(), this.opts.tickMs ?? 250);
  }

  stop(): void {
    this.clock.clearInterval(this.timer);
    this.timer = null;
  }

  get(id: string): DeviceSnapshot | undefined {
    const rec = this.devices.get(id);
    return rec ? this.snapshotOf(rec) : undefined;
  }

  ids(): readonly string[] {
    return (this.sortedIds ??= Object.freeze([...this.devices.keys()].sort()));
  }

  list(): DeviceSnapshot[] {
    return [...this.devices.keys()].sort().map((id) => this.snapshotOf(this.devices.get(id)!));
  }

  /** The link a command for this device goes out on, or undefined when the device is unknown. */
  linkOf(id: string): DeviceLink | undefined {
    return this.devices.get(id)?.link;
  }

  anonymousDiscardCounts(): ReadonlyMap<string, Record<string, number>> {
    return this.anonymousDiscards;
  }

  /** A console with a record: it sent a valid HELLO (or the journal knew it) and was within maxConsoles. */
  has(deviceId: string): boolean {
    return this.devices.has(deviceId);
  }

  ingest(deviceId: string, frames: DeviceFrame[], link: DeviceLink): Promise<void> {
    const rx = this.now();
    let rec = this.devices.get(deviceId);
    if (!rec) {
      const admitted = this.admit(deviceId, frames, link, rx);
      if (!admitted) return Promise.resolve();
      rec = admitted;
    } else if (rec.link !== link) {
      rec.link = link;
      rec.snap.transport = link.kind;
      rec.snap.source = link.source;
    }
    for (const f of frames) this.apply(rec, f, rx);
    return this.opts.durability ? this.opts.durability.committed() : Promise.resolve();
  }

  /**
   * A console exists only once it said who it is: a valid HELLO, or an id the journal holds frames of (over
   * MQTT a resumed session delivers its queued messages before the broker replays the retained HELLO, and
   * those must not be lost). Anything else is counted under its source and dropped, never a record: ids come
   * from whoever can publish, and every record costs memory, metrics and alarms. At most maxConsoles records.
   */
  private admit(deviceId: string, frames: DeviceFrame[], link: DeviceLink, rx: number): DeviceRecord | null {
    if (!isValidDeviceId(deviceId)) {
      // A HELLO or topic with an unusable or reserved id: counted under its source, never a device of its own.
      this.discard(null, link.source, {
        type: 'discard', reason: 'schema', raw: deviceId.slice(0, 128), detail: `device id ${JSON.stringify(deviceId.slice(0, 64))} is not valid`,
      });
      return null;
    }
    const data = frames.filter((f) => f.type !== 'STATUS');
    // A retained `status` may be replayed before the retained HELLO: it says nothing worth a record or a count.
    if (data.length === 0) return null;
    const hello = data.some((f) => f.type === 'HELLO');
    const max = this.opts.maxConsoles ?? DEFAULT_MAX_CONSOLES;
    const full = this.devices.size >= max;
    const refuseFull = () => {
      this.refuse(deviceId, link.source, 'too_many_consoles', data.length, `${deviceId} refused: already ${max} consoles (maxConsoles)`);
      if (this.consoleLimitAt === null) {
        this.opts.onConsoleLimit?.(`console ${deviceId} refused: the gateway already serves ${max} consoles (maxConsoles); `
          + 'its data is not shown, alarmed or stored');
      }
      this.consoleLimitAt = this.now();
    };
    // A HELLO flood beyond the limit costs no journal read.
    if (hello && full) {
      refuseFull();
      return null;
    }
    const remembered = this.unknownIds.has(deviceId) ? null : this.rememberedSeq(deviceId);
    if (!hello && remembered === null) {
      // Only a journal that answered is sure: an id it could not be asked about is asked again next time.
      if (!this.journalFailed) {
        if (this.unknownIds.size >= UNKNOWN_IDS_MAX) this.unknownIds.clear();
        this.unknownIds.add(deviceId);
      }
      this.refuse(deviceId, link.source, 'no_hello', data.length, `${deviceId} sent ${data[0].type} before any HELLO`);
      return null;
    }
    if (full) {
      refuseFull();
      return null;
    }
    this.unknownIds.delete(deviceId);
    return this.recordFor(deviceId, link, rx, remembered);
  }

  /** Frames of an id that gets no record: counted under the source, logged at most once per window and reason. */
  private refuse(deviceId: string, source: string, reason: DiscardReason, frames: number, detail: string): void {
    const counts = this.anonymousCounts(source);
    counts[reason] = (counts[reason] ?? 0) + frames;
    this.opts.bus.emit('discard', { deviceId: null, source, reason, detail });
    const admitted = this.logThrottle.admit(`refuse|${reason}`);
    if (admitted) {
      this.opts.logger.warn({ device: deviceId, source, reason, frames, suppressed: admitted.suppressed }, `frames dropped: ${detail}`);
    }
  }

  discard(deviceId: string | null, source: string, d: Discard): void {
    // Never keyed by an unknown device id: ids come from the outside and the map would grow without bound.
    const counts = deviceId && this.devices.has(deviceId)
      ? this.devices.get(deviceId)!.snap.counters.discards
      : this.anonymousCounts(source);
    counts[d.reason] = (counts[d.reason] ?? 0) + 1;
    this.opts.bus.emit('discard', { deviceId, source, reason: d.reason, detail: d.detail });
  }

  linkDown(deviceId: string, reason: string): void {
    const rec = this.devices.get(deviceId);
    if (!rec) return;
    if (reason.startsWith('device status offline')) rec.deviceOnline = false;
    this.setLink(rec, 'lost', reason, this.now());
  }

  reconnected(deviceId: string): void {
    const rec = this.devices.get(deviceId);
    if (rec) rec.snap.counters.reconnects++;
  }

  /** `msc_frames_total`, `msc_discards_total`, sequence and link families: read from the snapshots at scrape time. */
  registerMetrics(registry: Registry): void {
    const snapshots = oncePerScrape(() => this.list());
    const perDevice = (value: (s: DeviceSnapshot) => number | null) => () =>
      snapshots().flatMap((s) => { const v = value(s); return v === null ? [] : [[{ device: s.id }, v] as const]; });
    counter(registry, {
      name: 'msc_frames_total', help: 'Frames received per device and type.', labelNames: ['device', 'type'],
      read: () => snapshots().flatMap(({ id: device, counters: c }) => [
        [{ device, type: 'T' }, c.telemetry], [{ device, type: 'S' }, c.states], [{ device, type: 'EV' }, c.events], [{ device, type: 'ACK' }, c.acks],
      ] as const),
    });
    counter(registry, {
      // Discards before a HELLO have no console to belong to: `device=""` and the source they came from.
      name: 'msc_discards_total', help: 'Lines or payloads discarded, by reason.', labelNames: ['device', 'source', 'reason'],
      read: () => [
        ...snapshots().flatMap((s) => Object.entries(s.counters.discards).map(([reason, n]) => [{ device: s.id, reason }, n] as const)),
        ...[...this.anonymousDiscards].flatMap(([source, counts]) =>
          Object.entries(counts).map(([reason, n]) => [{ device: '', source, reason }, n] as const)),
      ],
    });
    counter(registry, { name: 'msc_seq_gaps_total', help: 'Sequence gaps (each jump counts once).', labelNames: ['device'], read: perDevice((s) => s.counters.seqGaps) });
    counter(registry, {
      name: 'msc_frames_lost_total', help: 'Frames lost by the ICD formula (seq - last_seq - 1) mod 2^32.', labelNames: ['device'],
      read: perDevice((s) => s.counters.framesLost),
    });
    counter(registry, {
      name: 'msc_seq_implausible_total', help: 'Frames whose seq no console could have sent after the last (not counted as lost).',
      labelNames: ['device'], read: perDevice((s) => s.counters.seqImplausible),
    });
    counter(registry, { name: 'msc_duplicates_total', help: 'Frames received twice (MQTT redelivery).', labelNames: ['device'], read: perDevice((s) => s.counters.duplicates) });
    counter(registry, { name: 'msc_reconnects_total', help: 'Transport reconnects per device.', labelNames: ['device'], read: perDevice((s) => s.counters.reconnects) });
    gauge(registry, {
      name: 'msc_link_up', help: '1 when the device link is connected.', labelNames: ['device', 'transport'],
      read: () => snapshots().map((s) => [{ device: s.id, transport: s.transport }, s.link === 'connected' ? 1 : 0] as const),
    });
    gauge(registry, { name: 'msc_clock_offset_ms', help: 'Device clock minus gateway clock.', labelNames: ['device'], read: perDevice((s) => s.clockOffsetMs) });
  }

  private anonymousCounts(source: string): Record<string, number> {
    let c = this.anonymousDiscards.get(source);
    if (!c) this.anonymousDiscards.set(source, (c = {}));
    return c;
  }

  private recordFor(deviceId: string, link: DeviceLink, rx: number, remembered: SeqBaseline | null): DeviceRecord {
    const rec: DeviceRecord = {
      snap: {
        id: deviceId, model: null, fw: null, serialNo: null, icd: null,
        transport: link.kind, source: link.source, link: 'lost', linkReason: 'no frame yet', lastSeen: null,
        state: null, stateSince: null, sessionId: null, values: {},
        counters: {
          frames: 0, telemetry: 0, states: 0, events: 0, acks: 0, discards: {},
          seqGaps: 0, framesLost: 0, duplicates: 0, seqImplausible: 0, reconnects: 0,
        },
        clockOffsetMs: null, dataLateMs: null, telemetryPeriodMs: null,
      },
      link,
      seq: new SequenceTracker(remembered),
      offsetWindows: [-Infinity], offsetWindowStart: rx,
      lastTelemetryT: null, periods: [], periodIdx: 0, deviceOnline: true, extraChannels: new Set(), createdAt: rx,
    };
    this.devices.set(deviceId, rec);
    this.sortedIds = null;
    // A serial port that spoke before its HELLO carried its discards under the port path: they were this
    // console's. A broker is shared by every console (and by whoever else publishes): its counts stay its own.
    const pending = link.kind === 'serial' ? this.anonymousDiscards.get(link.source) : undefined;
    if (pending) {
      for (const [r, n] of Object.entries(pending)) rec.snap.counters.discards[r] = (rec.snap.counters.discards[r] ?? 0) + n;
      this.anonymousDiscards.delete(link.source);
    }
    return rec;
  }

  /**
   * The last seq the journal holds for a device (and when it was received), to count what a restart lost and to
   * admit a console seen before whose HELLO has not come yet. Best effort: a journal that
   * cannot be read (unwritable or full disk) must never stop live data, so its error only costs that count.
   */
  private rememberedSeq(deviceId: string): SeqBaseline | null {
    try {
      const remembered = this.opts.seqMemory?.lastSeq(deviceId) ?? null;
      this.journalFailed = false;
      return remembered;
    } catch (err) {
      this.journalFailed = true;
      const admitted = this.logThrottle.admit('journal-unavailable');
      if (admitted) {
        this.opts.logger.warn({ device: deviceId, err: (err as Error).message, suppressed: admitted.suppressed },
          'journal unavailable: frames lost before this start are not counted, and a console is admitted only by its HELLO');
      }
      return null;
    }
  }

  private apply(rec: DeviceRecord, f: DeviceFrame, rx: number): void {
    const snap = rec.snap;
    if (f.type === 'STATUS') {
      rec.deviceOnline = f.online;
      if (!f.online) this.setLink(rec, 'lost', 'device status offline', rx);
      return;
    }
    snap.counters.frames++;
    snap.lastSeen = rx;
    if (isSequenced(f)) {
      const last = rec.seq.lastSeq;
      const verdict = rec.seq.accept(f.seq, rx);
      snap.counters.seqGaps = rec.seq.gaps;
      snap.counters.framesLost = rec.seq.framesLost;
      snap.counters.duplicates = rec.seq.duplicates;
      snap.counters.seqImplausible = rec.seq.implausible;
      if (verdict === 'duplicate') return;
      if (verdict === 'implausible') {
        const admitted = this.logThrottle.admit(`seq|${snap.id}`);
        if (admitted) {
          this.opts.logger.warn({ device: snap.id, seq: f.seq, last, suppressed: admitted.suppressed },
            `device ${snap.id}: seq ${f.seq} after ${last} is not a jump a console can make; not counted as lost`);
        }
      }
      this.trackOffset(rec, f.t, rx);
    }
    // A HELLO alone proves nothing about the link: over MQTT it is retained and replayed by the broker for a
    // console that may be long dead. Frames with a seq, and ACKs, are the device speaking now.
    if (f.type !== 'HELLO') {
      rec.deviceOnline = true;
      if (snap.link !== 'connected') this.setLink(rec, 'connected', 'frames flowing', rx);
    }
    switch (f.type) {
      case 'HELLO':
        return this.onHello(rec, f);
      case 'T': {
        snap.counters.telemetry++;
        this.trackPeriod(rec, f.t);
        const channels = this.capChannels(rec, f.v);
        const values = snap.values;
        for (const key in channels) {
          const v = channels[key];
          const reading: ChannelReading | undefined = values[key];
          if (reading === undefined) {
            values[key] = v === null ? { v: null, t: f.t, fault: true } : { v, t: f.t };
            continue;
          }
          if (reading.t > f.t) continue; // a late frame never overwrites a newer value
          // The readings never leave the hub (snapshots are copies): a valid value over a valid one is written in
          // place, no allocation per channel and sample; a fault appearing or clearing changes the reading's shape.
          if (v !== null && reading.fault === undefined) {
            reading.v = v;
            reading.t = f.t;
          } else {
            values[key] = v === null ? { v: null, t: f.t, fault: true } : { v, t: f.t };
          }
        }
        // How much later than it should the sample arrived (device time corrected by the clock offset).
        snap.dataLateMs = Math.max(0, Math.round(rx - (f.t - (snap.clockOffsetMs ?? 0))));
        const sample: TelemetrySample = {
          deviceId: snap.id, sessionId: snap.sessionId, seq: f.seq, t: f.t, rx, v: channels, lateMs: snap.dataLateMs,
        };
        this.opts.bus.emit('telemetry', sample);
        return;
      }
      case 'S': {
        snap.counters.states++;
        const previous = snap.state;
        const changed = previous !== f.state || snap.sessionId !== f.sessionId;
        if (snap.stateSince === null || previous !== f.state) snap.stateSince = f.t;
        snap.state = f.state;
        snap.sessionId = f.sessionId;
        // Keep-alive `S` frames repeat the state every 5 s; the bus carries changes only.
        if (changed) {
          this.opts.bus.emit('state', {
            deviceId: snap.id, seq: f.seq, t: f.t, rx, state: f.state, sessionId: f.sessionId, previous,
          });
        }
        return;
      }
      case 'EV':
        snap.counters.events++;
        this.opts.bus.emit('event', {
          deviceId: snap.id, sessionId: snap.sessionId, seq: f.seq, t: f.t, rx,
          code: f.code, prio: f.prio, active: f.active, text: f.text,
        });
        return;
      case 'ACK':
        snap.counters.acks++;
        this.opts.bus.emit('ack', { deviceId: snap.id, ack: f, rx });
        return;
    }
  }

  /**
   * The frame's channels within the console's key limit: every ICD channel, and other keys while the console has
   * used fewer than EXTRA_CHANNELS_MAX of them. The rest are dropped from the frame (so the journal, the live
   * stream, the exports and the alarms all see the same frame) and counted as one `too_many_channels` discard.
   */
  private capChannels(rec: DeviceRecord, v: ChannelValues): ChannelValues {
    const extra = rec.extraChannels;
    let dropped: string[] | null = null;
    for (const key in v) {
      if (ICD_CHANNELS.has(key) || extra.has(key)) continue;
      if (extra.size < EXTRA_CHANNELS_MAX) extra.add(key);
      else (dropped ??= []).push(key);
    }
    if (dropped === null) return v;
    const kept: ChannelValues = {};
    for (const key in v) if (ICD_CHANNELS.has(key) || extra.has(key)) kept[key] = v[key];
    const id = rec.snap.id;
    const detail = `${dropped.length} channel keys beyond the console's ${MAX_CHANNELS_PER_CONSOLE} dropped (first ${dropped[0]})`;
    this.discard(id, rec.link.source, { type: 'discard', reason: 'too_many_channels', raw: dropped.join(',').slice(0, 128), detail });
    const admitted = this.logThrottle.admit(`channels|${id}`);
    if (admitted) this.opts.logger.warn({ device: id, dropped: dropped.length, suppressed: admitted.suppressed }, `device ${id}: ${detail}`);
    return kept;
  }

  private onHello(rec: DeviceRecord, f: HelloFrame): void {
    const snap = rec.snap;
    snap.model = f.model;
    snap.fw = f.fw;
    snap.serialNo = f.serialNo;
    snap.icd = f.icd;
    rec.seq.onHello();
    // A console that (re)starts may have had its clock set: learn its offset again. Over MQTT a retained HELLO is
    // replayed at every subscribe; forgetting then costs only a fresh estimate from the next samples.
    rec.offsetWindows = [-Infinity];
    rec.offsetWindowStart = this.now();
    this.opts.bus.emit('hello', { deviceId: snap.id, hello: f, transport: rec.link.kind, source: rec.link.source });
  }

  private trackOffset(rec: DeviceRecord, t: number, rx: number): void {
    const windows = rec.offsetWindows;
    if (rx - rec.offsetWindowStart >= OFFSET_WINDOW_MS) {
      windows.push(-Infinity);
      if (windows.length > OFFSET_WINDOWS) windows.shift();
      rec.offsetWindowStart = rx;
    }
    const o = t - rx;
    if (o > windows[windows.length - 1]) windows[windows.length - 1] = o;
    let max = -Infinity;
    for (const w of windows) if (w > max) max = w;
    rec.snap.clockOffsetMs = max;
  }

  private trackPeriod(rec: DeviceRecord, t: number): void {
    const last = rec.lastTelemetryT;
    rec.lastTelemetryT = t;
    if (last === null || t <= last) return;
    const dt = t - last;
    if (rec.periods.length < PERIOD_RING) rec.periods.push(dt);
    else rec.periods[rec.periodIdx] = dt;
    rec.periodIdx = (rec.periodIdx + 1) % PERIOD_RING;
    if (rec.periodIdx === 0 || rec.snap.telemetryPeriodMs === null) {
      const sorted = [...rec.periods].sort((a, b) => a - b);
      rec.snap.telemetryPeriodMs = sorted[sorted.length >> 1];
    }
  }

  private setLink(rec: DeviceRecord, link: LinkState, reason: string, at: number): void {
    if (rec.snap.link === link && rec.snap.linkReason === reason) return;
    const changed = rec.snap.link !== link;
    rec.snap.link = link;
    rec.snap.linkReason = reason;
    if (changed) {
      this.opts.logger.info({ device: rec.snap.id, link, reason }, `device ${rec.snap.id} link ${link}: ${reason}`);
      this.opts.bus.emit('link', { deviceId: rec.snap.id, link, at, reason });
    }
  }

  /** Absent data is never normal: a device that stops talking is marked lost. */
  /** Consoles forgotten since start (silent outside a session for `forgetSilentMs`). */
  get forgottenCount(): number {
    return this.forgotten;
  }

  private checkSilence(): void {
    const now = this.now();
    if (this.consoleLimitAt !== null && now - this.consoleLimitAt >= CONSOLE_LIMIT_CLEAR_MS) {
      this.consoleLimitAt = null;
      this.opts.onConsoleLimit?.(null);
    }
    const forgetMs = this.opts.forgetSilentMs ?? DEFAULT_FORGET_SILENT_MS;
    for (const rec of this.devices.values()) {
      const s = rec.snap;
      if (forgetMs > 0 && s.link !== 'connected' && this.forgettable(rec, now, forgetMs)) {
        this.forget(rec, `silent for ${Math.round((now - (s.lastSeen ?? 0)) / 60_000)} min outside a session`);
        continue;
      }
      if (s.link !== 'connected' || s.lastSeen === null) continue;
      const silent = now - s.lastSeen;
      const quiet = s.state !== null && QUIET_STATES.has(s.state);
      const limit = quiet ? SILENCE_IDLE_MS : Math.max(SILENCE_MIN_MS, 3 * (s.telemetryPeriodMs ?? 0));
      if (silent > limit) this.setLink(rec, 'lost', `no frame for ${Math.round(silent / 100) / 10} s`, now);
    }
  }

  /** Silent that long, and not in a session: nobody is being treated on it. */
  private forgettable(rec: DeviceRecord, now: number, forgetMs: number): boolean {
    const s = rec.snap;
    const since = s.lastSeen ?? rec.createdAt;
    if (now - since < forgetMs) return false;
    return s.sessionId === null || s.state === null || QUIET_STATES.has(s.state);
  }

  /**
   * Forgets a console in memory: its record goes, and the bus tells every part to drop what it keeps for it (the
   * alarm engine closes its alarms). Its journal rows stay; a HELLO (or journal-known frames) bring it back.
   */
  private forget(rec: DeviceRecord, reason: string): void {
    const id = rec.snap.id;
    this.devices.delete(id);
    this.sortedIds = null;
    this.forgotten += 1;
    this.opts.logger.info({ device: id, reason }, `console ${id} forgotten: ${reason}`);
    this.opts.bus.emit('forget', { deviceId: id, reason, at: this.now() });
  }

  private snapshotOf(rec: DeviceRecord): DeviceSnapshot {
    const s = rec.snap;
    return { ...s, values: structuredClone(s.values), counters: { ...s.counters, discards: { ...s.counters.discards } } };
  }
}

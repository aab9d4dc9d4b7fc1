/**
 * Replay over the live stream: `{"type":"replay","device","session"|"from","to","speed"}` streams a
 * device's stored samples paced by their device timestamps × speed, from InfluxDB when configured and the
 * journal otherwise. Samples are read in pages, never all at once, so the first one leaves within a few ms
 * even for a 24 h session. Every message carries `replay: true` and the replay id; live messages never do.
 *
 * Per client, one replay at a time; control with `{"type":"replay","action":"pause"|"resume"|"stop"}`,
 * `{"action":"seek","t"}` and `{"action":"speed","speed"}`. Access (engineer) is checked by the live hub.
 */
import { z } from 'zod';
import type { StateChange } from '../bus.js';
import type { Annotation, AnnotationQuery } from '../control/annotations.js';
import { issuesText, zodIssues, type ErrorCode, type FieldIssue } from '../errors.js';
import type { Logger } from '../log.js';
import type { ChannelValues } from '../protocol/types.js';
import type { HistoryService } from '../storage/history.js';
import type { Journal } from '../storage/journal.js';
import type { LiveClient } from './liveClient.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';
import { encode, type Check, type Same } from './messages.js';
import type * as P from './protocol.js';
import { isValidDeviceId } from '../protocol/types.js';

export interface ReplayOptions {
  journal: Journal | null;
  history?: HistoryService | null;
  /** The annotation store; it throws while the journal is not open, and the markers then come empty. */
  annotations?: { query(q: AnnotationQuery): Annotation[] };
  logger: Logger;
  /** Timers (default: systemClock: real time, timers unref'd); ManualClock in tests. */
  clock?: Clock;
  /** Overrides clock.now (kept for callers that inject time alone). */
  now?: () => number;
  /** Pacing tick, ms. */
  tickMs?: number;
  /** Socket backlog above which nothing more is queued (also what "as fast as possible" means). */
  maxBufferedBytes?: number;
  pageRows?: number;
  maxConcurrent?: number;
}

/** A stored sample as replayed: `seq` is null when the source (InfluxDB) does not keep it. */
export interface ReplaySample {
  seq: number | null;
  t: number;
  v: ChannelValues;
}

/** One session of one console, in device time, from its state changes. `to` is null while it runs. */
export interface SessionSpan {
  sessionId: string;
  from: number;
  to: number | null;
  states: string[];
}

const Speed = z.union([z.literal('max'), z.number().positive().max(10_000)]);
const Id = z.union([z.string().max(64), z.number()]).optional();
const StartSchema = z.object({
  type: z.literal('replay'),
  action: z.literal('start').optional(),
  id: Id,
  // The ingest's rule, as for subscribe: an id that can never be a console is an invalid request, not a not_found.
  device: z.string().min(1).max(64).refine(isValidDeviceId, { message: 'not a device id' }),
  session: z.string().min(1).max(64).optional(),
  from: z.number().int().nonnegative().optional(),
  to: z.number().int().positive().optional(),
  speed: Speed.default(1),
}).strict().refine((m) => m.session !== undefined || (m.from !== undefined && m.to !== undefined), {
  message: 'give a session, or from and to',
}).refine((m) => m.from === undefined || m.to === undefined || m.from < m.to, { message: 'to must be after from', path: ['to'] });
const ControlSchema = z.discriminatedUnion('action', [
  z.object({ type: z.literal('replay'), action: z.enum(['pause', 'resume', 'stop']), id: Id }).strict(),
  z.object({ type: z.literal('replay'), action: z.literal('seek'), t: z.number().int().nonnegative(), id: Id }).strict(),
  z.object({ type: z.literal('replay'), action: z.literal('speed'), speed: Speed, id: Id }).strict(),
]);

/** What a client may send to replay is what these schemas accept (before their defaults are applied). */
export type ReplayRequestInStep = Check<Same<P.ReplayRequest, z.input<typeof StartSchema> | z.input<typeof ControlSchema>>>;

/** A replay message as built here: the replay's own marks (`replay`, `replayId`) are added by send(). */
type ReplayBody = P.ReplayMessage extends infer M ? M extends { replayId: number } ? Omit<M, 'replay' | 'replayId'> : never : never;

const FAR_FUTURE = 8.64e15;
const MARKER_LIMIT = 5_000;
/** Samples per telemetry message: a 60× replay of 25 Hz data is 1500 samples/s, in ~20 messages. */
const MAX_BATCH = 500;
/** In paced modes a position notice at least this often, so the timeline moves through gaps in the data. */
const POSITION_EVERY_MS = 250;

/** Session spans from a device's state changes (the journal keeps changes only, so this list is short). */
export function sessionSpans(states: readonly StateChange[]): SessionSpan[] {
  const spans: SessionSpan[] = [];
  let open: SessionSpan | null = null;
  for (const s of states) {
    if (open && s.sessionId !== open.sessionId) {
      open.to = s.t;
      open = null;
    }
    if (!open && s.sessionId !== null) {
      open = { sessionId: s.sessionId, from: s.t, to: null, states: [] };
      spans.push(open);
    }
    if (open && open.states[open.states.length - 1] !== s.state) open.states.push(s.state);
  }
  return spans;
}

interface Replay {
  replayId: number; client: LiveClient; device: string; from: number; to: number; speed: number | 'max'; paused: boolean;
  /** Pacing anchor: device time `anchorT` was due at wall time `anchorWall`. */
  anchorT: number | null;
  anchorWall: number;
  /** Device time up to which samples have been sent. */
  position: number;
  queue: ReplaySample[]; pages: AsyncIterator<ReplaySample[]> | null; fetching: boolean; exhausted: boolean;
  /** Bumped by seek and stop: a page that arrives for an older generation is thrown away. */
  generation: number;
  lastPositionAt: number; ended: boolean;
}

export class ReplayService {
  private readonly replays = new Map<LiveClient, Replay>();
  private readonly watched = new WeakSet<LiveClient>();
  private timer: TimerHandle | null = null;
  private nextId = 1;
  private readonly now: () => number;
  private readonly clock: Clock;

  constructor(private readonly opts: ReplayOptions) {
    this.clock = opts.clock ?? systemClock;
    this.now = opts.now ?? (() => this.clock.now());
  }

  start(): void {
    if (this.timer) return;
    this.timer = this.clock.setInterval(() => this.tick(), this.opts.tickMs ?? 50);
  }

  /** Ends every replay. Safe to call twice. */
  stop(): void {
    this.clock.clearInterval(this.timer);
    this.timer = null;
    for (const r of this.replays.values()) this.finish(r, 'stopped');
    this.replays.clear();
  }

  get source(): 'influx' | 'journal' | null {
    if (this.opts.history?.source === 'influx') return 'influx';
    return this.opts.journal ? 'journal' : null;
  }

  /** Sessions of a device, oldest first (from the journal's state changes). */
  sessions(device: string): SessionSpan[] {
    if (!this.opts.journal) return [];
    return sessionSpans(this.opts.journal.states(device, { from: 0, to: FAR_FUTURE }, 100_000));
  }

  /** Called by the live hub for every `{"type":"replay"}` message of an engineer. */
  onMessage(client: LiveClient, json: unknown): void {
    const action = (json as { action?: unknown }).action;
    if (action === undefined || action === 'start') return this.begin(client, json);
    const parsed = ControlSchema.safeParse(json);
    if (!parsed.success) return this.invalid(client, parsed.error, (json as { id?: unknown }).id);
    const msg = parsed.data;
    const r = this.replays.get(client);
    if (!r) return this.error(client, 'no_replay', 'no replay is running on this connection', msg.id);
    switch (msg.action) {
      case 'stop': return this.finish(r, 'stopped');
      case 'pause':
        if (!r.paused) { r.paused = true; r.anchorT = null; }
        return this.status(r, 'paused');
      case 'resume':
        r.paused = false;
        r.anchorT = null;
        this.status(r, 'resumed');
        return this.pump(r);
      case 'speed':
        r.speed = msg.speed;
        r.anchorT = null;
        return this.status(r, 'speed');
      case 'seek': return this.seek(r, Math.min(Math.max(msg.t, r.from), r.to));
    }
  }

  private begin(client: LiveClient, json: unknown): void {
    const parsed = StartSchema.safeParse(json);
    if (!parsed.success) return this.invalid(client, parsed.error, (json as { id?: unknown }).id);
    const msg = parsed.data;
    const source = this.source;
    if (!source) return this.error(client, 'unavailable', 'replay needs the journal or InfluxDB', msg.id);
    let from = msg.from;
    let to = msg.to;
    if (msg.session !== undefined) {
      // Several spans can share an id (the same id after a RESET): the latest one is meant.
      const span = this.sessions(msg.device).filter((s) => s.sessionId === msg.session).pop();
      if (!span) return this.error(client, 'not_found', `no session ${msg.session} on ${msg.device}`, msg.id);
      from ??= span.from;
      to ??= span.to ?? Math.max(this.now(), this.opts.journal?.lastSeq(msg.device)?.t ?? 0) + 1;
    }
    const existing = this.replays.get(client);
    if (existing) this.finish(existing, 'stopped');
    if (this.replays.size >= (this.opts.maxConcurrent ?? 8)) return this.error(client, 'busy', 'too many replays running', msg.id);
    const r: Replay = {
      replayId: this.nextId++, client, device: msg.device, from: from!, to: to!, speed: msg.speed, paused: false,
      anchorT: null, anchorWall: 0, position: from!, queue: [], pages: null, fetching: false, exhausted: false,
      generation: 0, lastPositionAt: 0, ended: false,
    };
    this.replays.set(client, r);
    // One close listener per client, however many replays it starts: it ends whichever replay is current.
    if (!this.watched.has(client)) {
      this.watched.add(client);
      client.ws.once('close', () => {
        this.watched.delete(client);
        const current = this.replays.get(client);
        if (current) this.finish(current, 'stopped');
      });
    }
    this.send(r, { type: 'replay', status: 'started', id: msg.id, session: msg.session ?? null, from: r.from, to: r.to, speed: r.speed, source });
    this.openPages(r, r.from);
    this.sendMarkers(r, msg.session ?? null);
  }

  private seek(r: Replay, t: number): void {
    r.generation++;
    r.queue = [];
    void r.pages?.return?.(undefined);
    r.exhausted = false;
    r.ended = false;
    r.position = t;
    r.anchorT = null;
    this.status(r, 'seeked');
    this.openPages(r, t);
  }

  private openPages(r: Replay, from: number): void {
    r.pages = this.samples(r.device, from, r.to)[Symbol.asyncIterator]();
    this.fetch(r);
  }

  /** Pages of stored samples in [from, to), (t, seq) order (also the CSV export's source). */
  async *samples(device: string, from: number, to: number): AsyncGenerator<ReplaySample[]> {
    const rows = this.opts.pageRows ?? 1_000;
    if (this.source === 'influx' && this.opts.history) {
      // InfluxDB has no seq to page on: the next page starts 1 ms after the last sample (the ICD's t_ms
      // is unique per sample at every rate up to 100 Hz).
      let at = from;
      for (;;) {
        const res = await this.opts.history.telemetry(device, { from: at, to, limit: rows });
        if (res.samples.length > 0) yield res.samples.map((s) => ({ seq: null, t: s.t, v: s.v }));
        if (!res.truncated || res.samples.length === 0) return;
        at = res.samples[res.samples.length - 1].t + 1;
      }
    }
    for await (const page of this.opts.journal!.iterateTelemetry(device, from, to, rows)) {
      yield page.map((s) => ({ seq: s.seq, t: s.t, v: s.v }));
    }
  }

  private fetch(r: Replay): void {
    if (r.fetching || r.exhausted || !r.pages) return;
    r.fetching = true;
    const generation = r.generation;
    r.pages.next().then((res) => {
      if (generation !== r.generation) return;
      r.fetching = false;
      if (res.done) r.exhausted = true;
      else r.queue.push(...res.value);
      this.pump(r);
    }, (err: unknown) => {
      if (generation !== r.generation) return;
      r.fetching = false;
      this.opts.logger.warn({ err: String(err), device: r.device }, 'replay read failed');
      this.error(r.client, 'storage_unavailable', 'stored samples could not be read');
      this.finish(r, 'stopped');
    });
  }

  private tick(): void {
    for (const r of this.replays.values()) this.pump(r);
  }

  /** Sends what is due (or, at 'max', what the socket takes), refills the queue, and ends at the end. */
  private pump(r: Replay): void {
    if (r.ended || r.paused) return;
    const now = this.now();
    const maxBuffered = this.opts.maxBufferedBytes ?? 128 * 1024;
    if (r.anchorT === null && r.queue.length > 0) {
      // Start the clock at the first sample (not at `from`), so a range that begins in a gap does not wait.
      r.anchorT = Math.max(r.position, Math.min(r.queue[0].t, r.to));
      r.anchorWall = now;
    }
    const due = r.speed === 'max' || r.anchorT === null ? Infinity : r.anchorT + (now - r.anchorWall) * r.speed;
    let sent = false;
    while (r.queue.length > 0 && r.queue[0].t <= due && r.client.ws.bufferedAmount < maxBuffered) {
      const n = Math.min(MAX_BATCH, countDue(r.queue, due));
      const batch = r.queue.splice(0, n);
      r.position = batch[batch.length - 1].t;
      this.send(r, { type: 'telemetry', device: r.device, samples: batch, position: r.position });
      sent = true;
      if (r.speed !== 'max') break;
    }
    if (r.queue.length < (this.opts.pageRows ?? 1_000) / 2) this.fetch(r);
    if (r.queue.length === 0 && r.exhausted && !r.fetching) return this.finish(r, 'ended');
    if (!sent && r.speed !== 'max' && Number.isFinite(due) && now - r.lastPositionAt >= POSITION_EVERY_MS) {
      // Through a gap in the data the device clock still runs: tell the timeline where we are.
      const nextT = r.queue[0]?.t ?? r.to;
      r.position = Math.max(r.position, Math.min(due, nextT, r.to));
      r.lastPositionAt = now;
      this.send(r, { type: 'replay', status: 'position', position: r.position });
    } else if (sent) {
      r.lastPositionAt = now;
    }
  }

  private sendMarkers(r: Replay, session: string | null): void {
    const j = this.opts.journal;
    if (!j) return this.send(r, { type: 'replayMarkers', device: r.device, from: r.from, to: r.to, states: [], alarms: [], events: [], annotations: [] });
    const range = { from: r.from, to: r.to };
    try {
      // The state in force when the range starts, so the timeline is coloured from its first pixel.
      const before = j.states(r.device, { from: 0, to: r.from + 1 }, 100_000).pop();
      const states = j.states(r.device, range, MARKER_LIMIT);
      if (before && before.t < r.from) states.unshift(before);
      // Alarm transitions are stamped on the gateway clock; device and gateway clocks are kept within
      // seconds of each other (CLOCK_SKEW alarm), which is close enough to place a marker on a timeline.
      const alarms = j.alarms(r.device, range, MARKER_LIMIT).map((a) => ({ t: a.at, kind: a.kind, id: a.alarm.id, rule: a.alarm.rule, priority: a.alarm.priority, state: a.to, message: a.alarm.message, actor: a.actor?.user ?? null }));
      const events = j.events(r.device, range, MARKER_LIMIT).map((e) => ({ t: e.t, code: e.code, prio: e.prio, active: e.active, text: e.text }));
      const annotations = (this.opts.annotations?.query({ device: r.device, from: r.from, to: r.to, limit: MARKER_LIMIT }) ?? [])
        .map((a) => ({ t: a.t, kind: a.kind, subtype: a.subtype, text: a.text, user: a.user }));
      this.send(r, {
        type: 'replayMarkers', device: r.device, session, from: r.from, to: r.to,
        states: states.map((s) => ({ t: s.t, state: s.state, sessionId: s.sessionId })), alarms, events, annotations,
      });
    } catch (err) {
      this.opts.logger.warn({ err: String(err), device: r.device }, 'replay markers unavailable');
      this.send(r, { type: 'replayMarkers', device: r.device, session, from: r.from, to: r.to, states: [], alarms: [], events: [], annotations: [] });
    }
  }

  private finish(r: Replay, how: 'ended' | 'stopped'): void {
    if (this.replays.get(r.client) !== r) return;
    r.ended = true;
    r.generation++;
    void r.pages?.return?.(undefined);
    this.replays.delete(r.client);
    this.status(r, how);
  }

  private status(r: Replay, status: P.ReplayStatusMessage['status']): void {
    this.send(r, { type: 'replay', status, position: r.position, speed: r.speed, paused: r.paused });
  }

  private send(r: Replay, body: ReplayBody): void {
    if (r.client.ws.readyState !== r.client.ws.OPEN) return;
    r.client.sendPriority(encode({ ...body, replay: true, replayId: r.replayId }));
  }

  private error(client: LiveClient, error: ErrorCode, message: string, id?: unknown, issues?: FieldIssue[]): void {
    client.sendPriority(encode({ type: 'replay', status: 'error', replay: true, error, message, issues, id }));
  }

  /** The live stream's issue format (src/errors.ts), beside the replay's own fields. */
  private invalid(client: LiveClient, error: z.ZodError, id: unknown): void {
    const issues = zodIssues(error);
    this.error(client, 'invalid_message', issuesText(issues), id, issues);
  }
}

function countDue(queue: ReplaySample[], due: number): number {
  let n = 0;
  while (n < queue.length && queue[n].t <= due) n++;
  return n;
}

/**
 * RecordWarmer: builds a session's perfusion record once, shortly after the session ends, so its telemetry results
 * are kept (telemetryCache.ts) before anyone asks: the perfusionist who opens or prints the record of a 24-hour
 * session then waits for the layout, not for a pass over millions of rows.
 *
 * One session at a time, WARM_DELAY_MS after its ENDED state (the console's last frames are journaled by then); the
 * pass yields between pages, so ingest and alarms carry on. A failure is logged and costs only the warm-up (the
 * record is then computed at its first request, as without the warmer).
 */
import type { EventBus } from '../bus.js';
import type { SessionRecord } from '../sessions/types.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export const WARM_DELAY_MS = 30_000;

export interface RecordWarmerOptions {
  bus: EventBus;
  /** Builds the record (and so keeps its telemetry results): RecordService.current. */
  build(rec: SessionRecord): Promise<unknown>;
  /** The ended session record of a console, or null (SessionService.find). */
  find(device: string, sessionId: string): SessionRecord | null;
  delayMs?: number;
  /** Housekeeping timers (systemClock, unref'd, by default). */
  clock?: Clock;
  logger: { warn(obj: object, msg?: string): void };
}

export class RecordWarmer {
  private readonly queue: Array<{ device: string; sessionId: string; due: number }> = [];
  private timer: TimerHandle | null = null;
  private running = false;
  private stopped = true;
  /** Records built ahead of a request, and failures (tests and logs). */
  warmed = 0;
  failed = 0;

  private readonly clock: Clock;

  constructor(private readonly opts: RecordWarmerOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.opts.bus.on(this, 'state', (c) => {
      if (c.state !== 'ENDED' || c.sessionId === null) return;
      if (this.queue.some((q) => q.device === c.deviceId && q.sessionId === c.sessionId)) return;
      this.queue.push({ device: c.deviceId, sessionId: c.sessionId, due: this.clock.now() + this.delay });
      this.schedule();
    });
  }

  stop(): void {
    this.stopped = true;
    this.opts.bus.removeOwner(this);
    this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }

  private get delay(): number {
    return this.opts.delayMs ?? WARM_DELAY_MS;
  }

  private schedule(): void {
    if (this.stopped || this.running || this.timer || this.queue.length === 0) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      void this.next();
    }, Math.max(0, this.queue[0].due - this.clock.now()));
  }

  private async next(): Promise<void> {
    const job = this.queue.shift();
    if (!job || this.stopped) return;
    this.running = true;
    try {
      const rec = this.opts.find(job.device, job.sessionId);
      if (rec && rec.endedAt !== null) {
        await this.opts.build(rec);
        this.warmed += 1;
      }
    } catch (err) {
      if (!this.stopped) {
        this.failed += 1;
        this.opts.logger.warn({ err: String(err), device: job.device, session: job.sessionId }, 'record warm-up failed: it is built at its first request');
      }
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}

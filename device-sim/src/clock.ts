/**
 * Simulated time. Consoles only ever read `now()` (ms of simulated time since the simulator
 * started) and are driven by ticks, so the same code runs `speed`× faster than real time under
 * `start()` or is stepped by hand in unit tests with `advance()`.
 */
export type TickListener = (simNowMs: number) => void;

export interface SimClockOptions {
  /** Simulated ms per real ms (default 1). */
  speed?: number;
  /** Real interval between ticks (default 10 ms). */
  tickMs?: number;
  /** Monotonic real time source, injectable for tests (default performance.now). */
  realNow?: () => number;
}

export class SimClock {
  private simNow = 0;
  private readonly listeners = new Set<TickListener>();
  private timer: NodeJS.Timeout | null = null;
  private realStart = 0;
  private simAtStart = 0;
  private wallAtStart = 0;
  private wallBeforeStart = 0;

  constructor(private readonly opts: SimClockOptions = {}) {}

  get speed(): number {
    return this.opts.speed ?? 1;
  }

  now(): number {
    return this.simNow;
  }

  /**
   * Real time elapsed, ms: by hand-stepped time it equals simulated time; under start() it is the
   * wall clock. The device's 60 s command-id window needs both so that a retry is never executed twice.
   */
  wallMs(): number {
    if (!this.timer) return this.wallBeforeStart + (this.simNow - this.simAtStart);
    return this.wallAtStart + ((this.opts.realNow ?? (() => performance.now()))() - this.realStart);
  }

  /** Registers a listener called after every step of time; returns its remover. */
  onTick(listener: TickListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Moves simulated time forward by hand (unit tests); runs every listener up to the new time. */
  advance(ms: number): void {
    if (this.timer) throw new Error('SimClock.advance() while running in real time');
    if (!(ms >= 0)) throw new Error(`SimClock.advance(${ms}): time only moves forward`);
    this.simNow += ms;
    this.emit();
  }

  /** Runs simulated time at `speed`× real time until stop(). */
  start(): void {
    if (this.timer) return;
    const realNow = this.opts.realNow ?? (() => performance.now());
    this.wallAtStart = this.wallMs();
    this.realStart = realNow();
    this.simAtStart = this.simNow;
    this.timer = setInterval(() => {
      this.simNow = this.simAtStart + (realNow() - this.realStart) * this.speed;
      this.emit();
    }, this.opts.tickMs ?? 10);
  }

  stop(): void {
    if (!this.timer) return;
    this.wallBeforeStart = this.wallMs();
    clearInterval(this.timer);
    this.timer = null;
    this.simAtStart = this.simNow;
  }

  private emit(): void {
    for (const l of [...this.listeners]) l(this.simNow);
  }
}

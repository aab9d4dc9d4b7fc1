/**
 * A queue of callbacks at simulated times. Ties run in the order they were scheduled so a run is
 * reproducible whatever the real-time tick size was.
 */
interface Timer {
  at: number;
  order: number;
  fn: () => void;
  cancelled: boolean;
}

export class SimScheduler {
  private timers: Timer[] = [];
  private order = 0;

  /** Schedules `fn` at simulated time `at`; returns a canceller. */
  at(at: number, fn: () => void): () => void {
    const timer: Timer = { at, order: this.order++, fn, cancelled: false };
    let i = this.timers.length;
    while (i > 0 && this.timers[i - 1].at > at) i--;
    this.timers.splice(i, 0, timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Time of the earliest pending timer, or Infinity. */
  nextAt(): number {
    while (this.timers.length > 0 && this.timers[0].cancelled) this.timers.shift();
    return this.timers[0]?.at ?? Infinity;
  }

  /** Runs the earliest timer if it is due at or before `now`; false when none is. */
  runNext(now: number): boolean {
    if (this.nextAt() > now) return false;
    const timer = this.timers.shift();
    timer?.fn();
    return timer !== undefined;
  }

  clear(): void {
    this.timers = [];
  }
}

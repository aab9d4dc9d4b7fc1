/**
 * The one seam through which parts read the time and arm timers (after MQTT.js' injectable `Timer`): a part
 * takes `clock?: Clock` in its options and never calls the globals, so a test drives it with `ManualClock.advance`
 * instead of waiting in real time or calling a private tick method.
 *
 * Two system clocks, because a part's timer either must not or must keep the process alive, and that choice is
 * the part's (each part keeps the one it had before this seam existed):
 * - `systemClock` unrefs every timer: housekeeping ticks (silence checks, alarm tick, flushes, heartbeats) never
 *   hold a process open that has nothing else to do;
 * - `keepAliveClock` leaves them referenced: a reconnect or a wait for an answer is work still to be done.
 * Parts given a clock explicitly (the gateway passes one to all) use that clock as it is.
 */

/** Opaque: only ever handed back to the clock that made it. */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds since the epoch, like Date.now(). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Accepts null/undefined, and a handle already fired or cleared (a no-op, like the globals). */
  clearTimeout(handle: TimerHandle | null | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | null | undefined): void;
}

function globalsClock(unref: boolean): Clock {
  return {
    now: () => Date.now(),
    setTimeout: (fn, ms) => {
      const h = setTimeout(fn, ms);
      if (unref) h.unref();
      return h;
    },
    clearTimeout: (h) => {
      if (h != null) clearTimeout(h as NodeJS.Timeout);
    },
    setInterval: (fn, ms) => {
      const h = setInterval(fn, ms);
      if (unref) h.unref();
      return h;
    },
    clearInterval: (h) => {
      if (h != null) clearInterval(h as NodeJS.Timeout);
    },
  };
}

/** Real time; timers unref'd (they never keep the process alive). */
export const systemClock: Clock = globalsClock(true);
/** Real time; timers keep the process alive until they fire or are cleared. */
export const keepAliveClock: Clock = globalsClock(false);

interface ManualTimer {
  id: number;
  due: number;
  /** Interval period, or null for a one-shot timeout. */
  every: number | null;
  fn: () => void;
}

/**
 * Time that moves only when a test says so. `advance(ms)` runs every timer that falls due on the way, in due-time
 * order (ties in the order they were armed), with `now()` set to each timer's due time while it runs; intervals
 * re-arm and fire as many times as they fall due. A timer armed by a callback fires in the same advance if it is
 * due within it. Delays below 1 ms count as 1 ms, as with Node's timers.
 */
export class ManualClock implements Clock {
  private t: number;
  private nextId = 1;
  private readonly timers = new Map<number, ManualTimer>();

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.arm(fn, ms, false);
  }

  clearTimeout(handle: TimerHandle | null | undefined): void {
    if (typeof handle === 'number') this.timers.delete(handle);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.arm(fn, ms, true);
  }

  clearInterval(handle: TimerHandle | null | undefined): void {
    this.clearTimeout(handle);
  }

  /** Timers armed and not yet fired (timeouts) or cleared (intervals). */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, running what falls due (see the class comment). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: need ms >= 0, got ${ms}`);
    const end = this.t + ms;
    for (;;) {
      const next = this.earliestDue(end);
      if (!next) break;
      this.t = next.due;
      if (next.every === null) this.timers.delete(next.id);
      else next.due += next.every;
      next.fn();
    }
    this.t = end;
  }

  private arm(fn: () => void, ms: number, repeat: boolean): number {
    const delay = Number.isFinite(ms) && ms >= 1 ? ms : 1;
    const id = this.nextId++;
    this.timers.set(id, { id, due: this.t + delay, every: repeat ? delay : null, fn });
    return id;
  }

  private earliestDue(end: number): ManualTimer | null {
    let best: ManualTimer | null = null;
    // Map iteration is insertion order, so `<` keeps the first-armed of equal due times.
    for (const timer of this.timers.values()) if (timer.due <= end && (!best || timer.due < best.due)) best = timer;
    return best;
  }
}

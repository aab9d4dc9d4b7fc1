/**
 * Persistence of alarm instances that are not NORMAL (active, latched, unacknowledged, shelved, out of service)
 * and of running audio pauses, so that they survive a gateway restart.
 * The file store writes JSON atomically (write tmp, fsync, rename, fsync dir), debounced ≤ 100 ms, flushed on stop.
 */
import { readFileSync, renameSync } from 'node:fs';
import { writeFileAtomic, writeFileAtomicAsync } from '../util/atomicFile.js';
import { join } from 'node:path';
import { z } from 'zod';
import type { SessionState } from '../protocol/types.js';
import { SessionStateSchema } from './ruleSchema.js';
import type { AlarmInstance, Actor } from './types.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

export interface PersistedInstance {
  alarm: AlarmInstance;
  ranks: { device: number; process: number; technical: number };
  reannunciateMs: number | null;
  escalateAfterMs: number | null;
  unackSince: number | null;
}
export interface PersistedAudioPause {
  deviceId: string;
  until: number;
  maxRank: number;
  actor: Actor | null;
}
/** A device's last session state (ICD §1 `S`), so that a restart does not evaluate a PAUSED circuit as RUNNING. */
export interface PersistedDeviceState {
  deviceId: string;
  state: SessionState;
  sessionId: string | null;
  /** Gateway time the state was reported. */
  at: number;
}
export interface PersistedAlarms {
  version: 1;
  savedAt: number;
  instances: PersistedInstance[];
  audioPauses: PersistedAudioPause[];
  /** Absent in files written before it existed. */
  deviceStates?: PersistedDeviceState[];
  /** Set by load() when the stored state could not be read (the engine raises a technical alarm). */
  problem?: string;
}

export interface AlarmStore {
  /** Never throws on file contents: an unreadable state yields an empty one with `problem` set. */
  load(): PersistedAlarms;
  /** Records the latest state; may write later (debounced). */
  save(state: PersistedAlarms): void;
  /** Writes any pending state now. */
  flush(): void;
  /** Called with an error message when a write fails, and with null when writes succeed again. */
  onWriteError?: ((message: string | null) => void) | null;
}

export function emptyAlarms(): PersistedAlarms {
  return { version: 1, savedAt: 0, instances: [], audioPauses: [] };
}

const Priority = z.enum(['HIGH', 'MEDIUM', 'LOW']);
const Source = z.enum(['device', 'process', 'technical']);
const NumStr = z.union([z.number(), z.string()]).nullable();
const Ts = z.number().nullable();
const ActorSchema = z.object({ user: z.string(), role: z.string() });
const PersistedSchema = z.object({
  version: z.literal(1),
  savedAt: z.number(),
  instances: z.array(z.object({
    alarm: z.object({
      id: z.string(), device: z.string(), rule: z.string(), source: Source, priority: Priority,
      state: z.enum(['NORMAL', 'UNACK', 'ACKED', 'RTN_UNACK', 'SHELVED', 'SUPPRESSED', 'OUT_OF_SERVICE']),
      active: z.boolean(), latching: z.boolean(), raisedAt: Ts, clearedAt: Ts, value: NumStr, limit: NumStr,
      message: z.string(), ackedBy: z.string().nullable(), ackedAt: Ts, shelvedUntil: Ts, sessionId: z.string().nullable(),
      sources: z.array(Source).optional(),
      shelvedBy: z.string().nullable().optional(), shelveReason: z.string().nullable().optional(),
      outOfServiceBy: z.string().nullable().optional(), outOfServiceReason: z.string().nullable().optional(),
    }),
    ranks: z.object({ device: z.number(), process: z.number(), technical: z.number() }),
    reannunciateMs: Ts, escalateAfterMs: Ts, unackSince: Ts,
  })),
  audioPauses: z.array(z.object({ deviceId: z.string(), until: z.number(), maxRank: z.number(), actor: ActorSchema.nullable() })),
  deviceStates: z.array(z.object({
    deviceId: z.string(), state: SessionStateSchema, sessionId: z.string().nullable(), at: z.number(),
  })).optional(),
});

/** For unit tests and for a gateway without a data directory. */
export class MemoryAlarmStore implements AlarmStore {
  private state: string | null = null;
  saves = 0;
  onWriteError: ((message: string | null) => void) | null = null;

  load(): PersistedAlarms {
    return this.state ? (JSON.parse(this.state) as PersistedAlarms) : emptyAlarms();
  }

  save(state: PersistedAlarms): void {
    this.saves++;
    this.state = JSON.stringify(state);
  }

  flush(): void {}
}

export interface FileAlarmStoreOptions {
  dataDir: string;
  fileName?: string;
  /** Longest a change waits before it is written. */
  debounceMs?: number;
  /** Timers (default: systemClock: real time, timers unref'd); ManualClock in tests. */
  clock?: Clock;
}

export class FileAlarmStore implements AlarmStore {
  readonly file: string;
  private pending: PersistedAlarms | null = null;
  private timer: TimerHandle | null = null;
  private failing = false;
  private writing = false;
  /** Versions started and the newest one renamed into place: an older write in flight never replaces a newer file. */
  private versions = 0;
  private renamed = 0;
  onWriteError: ((message: string | null) => void) | null = null;

  constructor(private readonly opts: FileAlarmStoreOptions) {
    this.file = join(opts.dataDir, opts.fileName ?? 'alarms.json');
  }

  load(): PersistedAlarms {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyAlarms();
      return { ...emptyAlarms(), problem: `cannot read ${this.file}: ${(err as Error).message}` };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      return this.setAside(`${this.file} is not JSON: ${(err as Error).message}`);
    }
    const r = PersistedSchema.safeParse(parsed);
    if (!r.success) return this.setAside(`${this.file} has an unexpected shape: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
    return r.data as PersistedAlarms;
  }

  save(state: PersistedAlarms): void {
    this.pending = state;
    if (this.timer || this.writing) return;
    this.timer = (this.opts.clock ?? systemClock).setTimeout(() => {
      this.timer = null;
      void this.writeInBackground();
    }, this.opts.debounceMs ?? 100);
  }

  /** Writes the latest state now, synchronously (stop): it wins over a background write still in flight. */
  flush(): void {
    (this.opts.clock ?? systemClock).clearTimeout(this.timer);
    this.timer = null;
    const state = this.pending;
    if (!state) return;
    const version = ++this.versions;
    try {
      writeFileAtomic(this.file, JSON.stringify(state));
      this.renamed = version;
      this.pending = null;
      this.wrote(null);
    } catch (err) {
      // Kept pending: the next save or flush retries. The engine raises a technical alarm meanwhile.
      this.wrote(`cannot write ${this.file}: ${(err as Error).message}`);
    }
  }

  /**
   * Debounced writes go through the thread pool (writeFileAtomicAsync): an alarm transition must never wait for
   * the disk on the event loop (docs/storage.md). One write at a time; what changed meanwhile is written next.
   */
  private async writeInBackground(): Promise<void> {
    const state = this.pending;
    if (!state || this.writing) return;
    this.pending = null;
    this.writing = true;
    const version = ++this.versions;
    try {
      const renamed = await writeFileAtomicAsync(this.file, JSON.stringify(state), {
        commit: () => version > this.renamed,
      });
      if (renamed) this.renamed = version;
      this.wrote(null);
    } catch (err) {
      // Kept pending: the next save or flush retries. The engine raises a technical alarm meanwhile.
      this.pending ??= state;
      this.wrote(`cannot write ${this.file}: ${(err as Error).message}`);
      return;
    } finally {
      this.writing = false;
    }
    if (this.pending) this.save(this.pending);
  }

  private wrote(problem: string | null): void {
    if (problem === null && this.failing) {
      this.failing = false;
      this.onWriteError?.(null);
    } else if (problem !== null) {
      this.failing = true;
      this.onWriteError?.(problem);
    }
  }

  /** A corrupt file is kept for inspection, never overwritten silently. */
  private setAside(problem: string): PersistedAlarms {
    const aside = `${this.file}.corrupt-${Date.now()}`;
    try {
      renameSync(this.file, aside);
    } catch {
      // Leave it where it is; the problem is reported either way.
    }
    return { ...emptyAlarms(), problem: `${problem} (moved to ${aside})` };
  }
}

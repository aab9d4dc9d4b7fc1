/**
 * Snapshots of the live stream, sent in parts and built a few devices at a time. A snapshot of a large fleet
 * built in one go held the event loop for seconds (serial reads, MQTT acks, the link-silence check and every
 * other client waited, and consoles were declared lost), and a client that did not read made the gateway buffer
 * one such snapshot per subscribe. Here one pump serves every client in turn:
 * - it works at most `sliceMs` per event-loop turn, then yields (setImmediate), whatever the number of clients;
 * - a part is closed at `partBytes` of device JSON or at the end of the slice;
 * - a client whose socket backlog is at or above `backlogBytes` gets no further part until it has drained (the
 *   hub's flow tick calls kick()), so the gateway never holds more than about one part beyond that bound.
 * Each device is read when its part is built and the part is written in the same turn: whatever live message
 * a client got before a device's part is older than the part, and whatever it gets after is newer.
 */
import { performance } from 'node:perf_hooks';
import type { AlarmInstance } from '../alarms/types.js';
import type { DeviceView } from '../model/deviceHub.js';
import type { LiveClient } from './liveClient.js';
import * as M from './messages.js';

export interface SnapshotLimits {
  /** Longest the pump works in one event-loop turn, ms. */
  sliceMs: number;
  /** A part is closed once its device JSON reaches this size, bytes (UTF-16 units, close enough). */
  partBytes: number;
  /** No further part while the client's socket backlog is at or above this, bytes. */
  backlogBytes: number;
}

export const DEFAULT_SNAPSHOT_LIMITS: Omit<SnapshotLimits, 'backlogBytes'> = { sliceMs: 4, partBytes: 64 * 1024 };

/** The devices one subscribe asked for; `next` is the first not yet sent. */
interface Job {
  ids: readonly string[];
  next: number;
}

export interface SnapshotPumpOptions {
  devices: DeviceView;
  alarmsOf?: (deviceId: string) => AlarmInstance[];
  limits: SnapshotLimits;
  /** Monotonic clock, ms (tests slow it down or speed it up). */
  clock?: () => number;
}

export class SnapshotPump {
  /** Clients with snapshot work, in the order they are served next (a served client moves to the end). */
  private readonly pending = new Map<LiveClient, Job[]>();
  private scheduled: NodeJS.Immediate | null = null;
  private readonly clock: () => number;
  readonly stats = { parts: 0, devices: 0, slices: 0, longestSliceMs: 0 };

  constructor(private readonly opts: SnapshotPumpOptions) {
    this.clock = opts.clock ?? (() => performance.now());
  }

  /** Queues a snapshot of these devices (ids are not copied: pass an array nobody mutates). */
  enqueue(client: LiveClient, ids: readonly string[]): void {
    const jobs = this.pending.get(client);
    if (jobs) jobs.push({ ids, next: 0 });
    else this.pending.set(client, [{ ids, next: 0 }]);
    this.schedule();
  }

  /** Snapshots queued for a client and not finished. */
  queued(client: LiveClient): number {
    return this.pending.get(client)?.length ?? 0;
  }

  /** Clients with snapshot work left (the metrics gauge). */
  get clientsWaiting(): number {
    return this.pending.size;
  }

  drop(client: LiveClient): void {
    this.pending.delete(client);
  }

  /** A client that was waiting for its socket to drain may have drained: called on the hub's flow tick. */
  kick(): void {
    if (this.pending.size > 0) this.schedule();
  }

  stop(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = null;
    this.pending.clear();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = null;
      this.run();
    });
  }

  private run(): void {
    const start = this.clock();
    const deadline = start + this.opts.limits.sliceMs;
    let progressed = true;
    let timeLeft = true;
    while (progressed && timeLeft && this.pending.size > 0) {
      progressed = false;
      for (const client of [...this.pending.keys()]) {
        const ws = client.ws;
        if (ws.readyState !== ws.OPEN || client.closing) {
          this.pending.delete(client);
          continue;
        }
        if (ws.bufferedAmount >= this.opts.limits.backlogBytes) continue;
        const jobs = this.pending.get(client)!;
        if (this.sendPart(client, jobs[0]!, deadline)) jobs.shift();
        this.pending.delete(client);
        if (jobs.length > 0) this.pending.set(client, jobs);
        progressed = true;
        if (this.clock() >= deadline) { timeLeft = false; break; }
      }
    }
    const took = this.clock() - start;
    this.stats.slices++;
    if (took > this.stats.longestSliceMs) this.stats.longestSliceMs = took;
    // Out of time with work left: continue next turn. Every client waiting on its backlog: the flow tick kicks.
    if (!timeLeft && this.pending.size > 0) this.schedule();
  }

  /** Sends the next part of a job; true when that was its last. */
  private sendPart(client: LiveClient, job: Job, deadline: number): boolean {
    const parts: M.SnapshotDeviceJson[] = [];
    let bytes = 0;
    while (job.next < job.ids.length) {
      const id = job.ids[job.next++]!;
      // Unsubscribed since, or gone: nothing to send for it.
      const snap = client.wants(id) ? this.opts.devices.get(id) : undefined;
      if (snap) {
        const text = M.snapshotDevice(snap, this.opts.alarmsOf?.(id) ?? []);
        parts.push(text);
        bytes += text.length;
      }
      if (bytes >= this.opts.limits.partBytes || this.clock() >= deadline) break;
    }
    const last = job.next >= job.ids.length;
    client.sendPriority(M.snapshotMessage(parts, !last));
    this.stats.parts++;
    this.stats.devices += parts.length;
    return last;
  }
}

/**
 * The typed event bus between parts. Listeners are registered against an owner so
 * that owner.stop() removes them all.
 *
 * Listeners are isolated: one that throws is counted and logged (throttled) under its owner, and the
 * listeners after it and the emitter carry on. Without that a bug in one part (say the live stream) would
 * stop the journal from seeing the sample, and the exception would travel back into the transport, which on
 * MQTT drops the connection and has the broker deliver the same message again, and again.
 */
import type {
  AckFrame, ChannelValues, DevicePriority, DiscardReason, HelloFrame, SessionState,
} from './protocol/types.js';
import type { AlarmTransition } from './alarms/types.js';
import { counter, type Registry } from './metrics.js';

export type TransportKind = 'serial' | 'mqtt';
export type LinkState = 'connected' | 'lost';

export interface TelemetrySample {
  deviceId: string;
  sessionId: string | null;
  seq: number;
  /** Device time, epoch ms. */
  t: number;
  /** Gateway receive time, epoch ms. */
  rx: number;
  v: ChannelValues;
  /** Live only: how late the sample arrived, ms (DeviceSnapshot.dataLateMs); absent in history and replay. */
  lateMs?: number | null;
}
export interface StateChange {
  deviceId: string;
  seq: number;
  t: number;
  rx: number;
  state: SessionState;
  sessionId: string | null;
  previous: SessionState | null;
}
export interface DeviceEvent {
  deviceId: string;
  sessionId: string | null;
  seq: number;
  t: number;
  rx: number;
  code: string;
  prio: DevicePriority;
  active: boolean;
  text: string;
}
export interface LinkChange {
  deviceId: string;
  link: LinkState;
  at: number;
  reason: string;
}
export interface DiscardNotice {
  /** Device id when known (null for a serial port that has not said HELLO yet). */
  deviceId: string | null;
  source: string;
  reason: DiscardReason;
  detail: string;
}

export interface BusEvents {
  hello: { deviceId: string; hello: HelloFrame; transport: TransportKind; source: string };
  telemetry: TelemetrySample;
  state: StateChange;
  event: DeviceEvent;
  ack: { deviceId: string; ack: AckFrame; rx: number };
  link: LinkChange;
  discard: DiscardNotice;
  alarm: AlarmTransition;
  /** Audio pause per device (IEC 60601-1-8 AUDIO PAUSED), with its end time. */
  audioPause: { deviceId: string; until: number | null; actor: { user: string; role: string } | null };
  /** A console forgotten in memory (silent outside a session): drop what you keep for it; its journal rows stay. */
  forget: { deviceId: string; reason: string; at: number };
}

type Listener<K extends keyof BusEvents> = (payload: BusEvents[K]) => void;

interface Entry {
  owner: object;
  listener: (payload: never) => void;
}

export interface BusLogger {
  error(obj: object, msg: string): void;
}

/** One log line per owner and event per minute at most; every failure is counted. */
const LOG_EVERY_MS = 60_000;

export class EventBus {
  /** Per event, the listeners in registration order; replaced, never mutated, so emit needs no copy. */
  private readonly listeners = new Map<keyof BusEvents, readonly Entry[]>();
  private readonly failures = new Map<string, { count: number; loggedAt: number; suppressed: number }>();

  constructor(private readonly opts: { logger?: BusLogger; now?: () => number } = {}) {}

  on<K extends keyof BusEvents>(owner: object, event: K, listener: Listener<K>): void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), { owner, listener: listener as Entry['listener'] }]);
  }

  emit<K extends keyof BusEvents>(event: K, payload: BusEvents[K]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const e of list) {
      try {
        (e.listener as Listener<K>)(payload);
      } catch (err) {
        this.failed(event, e.owner, err);
      }
    }
  }

  removeOwner(owner: object): void {
    for (const [event, list] of this.listeners) this.listeners.set(event, list.filter((e) => e.owner !== owner));
  }

  /** Exceptions thrown by listeners, per owner (its class name) and event. */
  listenerFailures(): Array<{ owner: string; event: string; count: number }> {
    return [...this.failures].map(([key, f]) => {
      const [owner, event] = key.split('|');
      return { owner, event, count: f.count };
    });
  }

  registerMetrics(registry: Registry): void {
    counter(registry, {
      name: 'msc_bus_listener_errors_total', help: 'Exceptions thrown by a part while handling an event (the others carried on).',
      labelNames: ['listener', 'event'],
      read: () => this.listenerFailures().map((f) => [{ listener: f.owner, event: f.event }, f.count] as const),
    });
  }

  private failed(event: keyof BusEvents, owner: object, err: unknown): void {
    const name = (owner as { constructor?: { name?: string } }).constructor?.name || 'anonymous';
    const key = `${name}|${event}`;
    const now = (this.opts.now ?? Date.now)();
    let f = this.failures.get(key);
    if (!f) this.failures.set(key, (f = { count: 0, loggedAt: -Infinity, suppressed: 0 }));
    f.count += 1;
    if (now - f.loggedAt < LOG_EVERY_MS) {
      f.suppressed += 1;
      return;
    }
    const error = err instanceof Error ? err.stack ?? err.message : String(err);
    (this.opts.logger ?? { error: (o: object, m: string) => console.error(m, o) })
      .error({ listener: name, event, err: error, suppressed: f.suppressed }, `${name} failed handling ${event}; the other parts carried on`);
    f.loggedAt = now;
    f.suppressed = 0;
  }
}

/**
 * The typed event bus between parts. Listeners are registered against an owner so
 * that owner.stop() removes them all.
 */
import { EventEmitter } from 'node:events';
import type {
  AckFrame, ChannelValues, DevicePriority, DiscardReason, HelloFrame, SessionState,
} from './protocol/types.js';
import type { AlarmTransition } from './alarms/types.js';

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
}

type Listener<K extends keyof BusEvents> = (payload: BusEvents[K]) => void;

export class EventBus {
  private readonly emitter = new EventEmitter();
  private readonly owned = new Map<object, Array<[keyof BusEvents, (...args: any[]) => void]>>();

  constructor() {
    this.emitter.setMaxListeners(100);
  }

  on<K extends keyof BusEvents>(owner: object, event: K, listener: Listener<K>): void {
    this.emitter.on(event, listener);
    const list = this.owned.get(owner) ?? [];
    list.push([event, listener as (...args: any[]) => void]);
    this.owned.set(owner, list);
  }

  emit<K extends keyof BusEvents>(event: K, payload: BusEvents[K]): void {
    this.emitter.emit(event, payload);
  }

  /** Removes every listener that `owner` registered. Safe to call twice. */
  removeOwner(owner: object): void {
    for (const [event, listener] of this.owned.get(owner) ?? []) this.emitter.off(event, listener);
    this.owned.delete(owner);
  }
}

/**
 * What the simulator put on the wire, per device: counters for CI to compare with what a gateway
 * received, and (opt-in) every frame with its fate so a test can compare exactly.
 */
import type { ConsoleFrame } from './console.js';

/** sent: on the wire intact; corrupted: sent with a bad CRC; dropped: never left (link down, line full). */
export type Delivery = 'sent' | 'corrupted' | 'dropped';

export interface RecordedFrame {
  frame: ConsoleFrame;
  delivery: Delivery;
}

export interface DeviceStats {
  /** Frames sent intact (HELLO, T, S, EV, ACK). */
  sent: number;
  corrupted: number;
  dropped: number;
  hellos: number;
  telemetry: number;
  states: number;
  events: number;
  acks: number;
  /** Seq of the last T/S/EV sent intact; -1 before the first. */
  lastSeq: number;
  /** Telemetry messages published over MQTT (a batch is one message). */
  messages: number;
  garbageBytes: number;
  linkDrops: number;
  commandsReceived: number;
  /** Command lines or payloads the device could not read (bad CRC, invalid JSON): no answer. */
  commandsDiscarded: number;
}

export interface SimulatorStats {
  framesSent: number;
  perDevice: Record<string, DeviceStats>;
}

function emptyStats(): DeviceStats {
  return {
    sent: 0, corrupted: 0, dropped: 0, hellos: 0, telemetry: 0, states: 0, events: 0, acks: 0, lastSeq: -1,
    messages: 0, garbageBytes: 0, linkDrops: 0, commandsReceived: 0, commandsDiscarded: 0,
  };
}

export class FrameLedger {
  private readonly devices = new Map<string, DeviceStats>();
  private readonly records = new Map<string, RecordedFrame[]>();

  constructor(private readonly record = false) {}

  /** Counters of one device, created on first use. */
  device(deviceId: string): DeviceStats {
    let s = this.devices.get(deviceId);
    if (!s) {
      s = emptyStats();
      this.devices.set(deviceId, s);
    }
    return s;
  }

  note(deviceId: string, frame: ConsoleFrame, delivery: Delivery): void {
    const s = this.device(deviceId);
    if (this.record) {
      const list = this.records.get(deviceId) ?? [];
      list.push({ frame, delivery });
      this.records.set(deviceId, list);
    }
    if (delivery === 'dropped') {
      s.dropped++;
      return;
    }
    if (delivery === 'corrupted') {
      s.corrupted++;
      return;
    }
    s.sent++;
    switch (frame.type) {
      case 'HELLO': s.hellos++; break;
      case 'T': s.telemetry++; break;
      case 'S': s.states++; break;
      case 'EV': s.events++; break;
      case 'ACK': s.acks++; break;
    }
    if (frame.type === 'T' || frame.type === 'S' || frame.type === 'EV') s.lastSeq = frame.seq;
  }

  stats(): SimulatorStats {
    const perDevice: Record<string, DeviceStats> = {};
    let framesSent = 0;
    for (const [id, s] of this.devices) {
      perDevice[id] = { ...s };
      framesSent += s.sent;
    }
    return { framesSent, perDevice };
  }

  /** Every frame the device produced, in order, with its fate; empty unless recording. */
  recorded(deviceId: string): RecordedFrame[] {
    return [...(this.records.get(deviceId) ?? [])];
  }
}

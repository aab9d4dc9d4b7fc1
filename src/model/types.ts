/**
 * Seams between transports and the device model. Transports decode; the hub owns the model.
 */
import type { LinkState, TransportKind } from '../bus.js';
import type { Command, DeviceFrame, Discard, SessionState } from '../protocol/types.js';

/** How the gateway reaches one device right now. A transport hands it over with every ingest. */
export interface DeviceLink {
  kind: TransportKind;
  /** Port path or broker URL, for logs and the API. */
  source: string;
  /** Encodes and writes one command. Rejects when the link cannot send now (port closed, broker down). */
  send(cmd: Command): Promise<void>;
}

export interface IngestSink {
  /**
   * Frames from one device, in arrival order, applied to the device model before it returns (the MQTT
   * transport hands over the next message without waiting). Resolves when they are durable (the journal's
   * transaction holding them committed, or at once without a journal): MQTT acks QoS 1 after it.
   */
  ingest(deviceId: string, frames: DeviceFrame[], link: DeviceLink): Promise<void>;
  /** Bytes or a payload that was not a frame; deviceId null when the source has no identity yet. */
  discard(deviceId: string | null, source: string, d: Discard): void;
  /** The transport itself lost the device (port closed, MQTT `status` offline or last will). */
  linkDown(deviceId: string, reason: string): void;
  /** A transport reconnected (port reopened, broker session resumed). Counted per device. */
  reconnected(deviceId: string): void;
  /**
   * Whether the device model holds this console (an ingest may refuse an id: no HELLO, too many consoles), so a
   * transport keeps per-device state only for consoles. Absent: every id is one.
   */
  has?(deviceId: string): boolean;
}

export interface ChannelReading {
  /** null when `fault` is true. */
  v: number | null;
  /** Device time of the frame that carried it, epoch ms. */
  t: number;
  fault?: true;
}

export interface DeviceCounters {
  frames: number;
  telemetry: number;
  states: number;
  events: number;
  acks: number;
  discards: Record<string, number>;
  seqGaps: number;
  framesLost: number;
  duplicates: number;
  /** Frames whose seq jumped further than a console could count (forged or corrupt): not in framesLost. */
  seqImplausible: number;
  reconnects: number;
}

/** The DEVICE object of the API. Times are epoch ms. */
export interface DeviceSnapshot {
  id: string;
  model: string | null;
  fw: string | null;
  serialNo: string | null;
  icd: number | null;
  transport: TransportKind;
  source: string;
  link: LinkState;
  linkReason: string | null;
  lastSeen: number | null;
  state: SessionState | null;
  stateSince: number | null;
  sessionId: string | null;
  values: Record<string, ChannelReading>;
  counters: DeviceCounters;
  clockOffsetMs: number | null;
  /**
   * How much later than it should the newest sample arrived, ms: gateway receive time minus its device time
   * corrected by clockOffsetMs (0 for the least-delayed sample of the last 10 minutes); null before the first.
   */
  dataLateMs: number | null;
  /** Median interval between telemetry frames, device time; null until known. */
  telemetryPeriodMs: number | null;
}

/**
 * The live stream's messages (`GET /ws`, subprotocol `msc.v1`) as they travel: what the gateway sends
 * (ServerMessage) and what a client may send (ClientMessage). One definition for both ends: the server's
 * builders (messages.ts, replay.ts, liveHub.ts) are typed against it and the browser (web/src) narrows on
 * `type` with it.
 *
 * This file imports nothing and holds types only: the web build compiles it with DOM libraries and no Node
 * types, and esbuild drops it from the bundle. The gateway's own types (alarms/types.ts, bus.ts,
 * model/types.ts) are kept in step by compile-time checks in messages.ts, not by importing them here.
 * Times are epoch ms; `t` is device time, `at` gateway time.
 */

// ---- Vocabulary (the same unions as the gateway's domain types) ----

export type Role = 'viewer' | 'operator' | 'engineer' | 'admin';
export type SessionState = 'IDLE' | 'SELFTEST' | 'PRIMING' | 'PRIMED' | 'RUNNING' | 'PAUSED' | 'RINSEBACK' | 'ENDED' | 'FAULT';
export type LinkState = 'connected' | 'lost';
export type TransportKind = 'serial' | 'mqtt';
/** Device priority letters of an `EV` frame: High, Medium, Low, Information. */
export type DevicePriority = 'H' | 'M' | 'L' | 'I';
export type CommandVerb = 'ID' | 'SYNC' | 'RATE' | 'SET' | 'PRIME' | 'START' | 'PAUSE' | 'RESUME' | 'RINSEBACK' | 'END' | 'RESET' | 'SILENCE';
/** `conflict`: the console's answers contradicted each other; `TIMEOUT`: no answer after every try. */
export type CommandResult = 'OK' | 'REJ' | 'ERR' | 'TIMEOUT' | 'conflict';
/** A channel value: a number, or null for a sensor fault. An absent key was not measured. */
export type ChannelValues = Record<string, number | null>;

export type AlarmPriority = 'HIGH' | 'MEDIUM' | 'LOW';
export type AlarmSource = 'device' | 'process' | 'technical';
export type AlarmState = 'NORMAL' | 'UNACK' | 'ACKED' | 'RTN_UNACK' | 'SHELVED' | 'SUPPRESSED' | 'OUT_OF_SERVICE';
export type AlarmTransitionKind =
  | 'raise' | 'clear' | 'ack' | 'shelve' | 'unshelve' | 'escalate' | 'reannunciate' | 'suppress' | 'unsuppress'
  | 'out_of_service' | 'return_to_service' | 'reset';

export interface Actor {
  user: string;
  role: string;
}

/** One alarm instance (IEC 60601-1-8 priority, ISA-18.2 state); `id` is `${device}:${rule}`. */
export interface Alarm {
  id: string;
  device: string;
  rule: string;
  source: AlarmSource;
  priority: AlarmPriority;
  state: AlarmState;
  /** Whether the condition is present now, whatever its acknowledgement. */
  active: boolean;
  latching: boolean;
  raisedAt: number | null;
  clearedAt: number | null;
  value: number | string | null;
  limit: number | string | null;
  message: string;
  ackedBy: string | null;
  ackedAt: number | null;
  shelvedUntil: number | null;
  sessionId: string | null;
  sources?: AlarmSource[];
  shelvedBy?: string | null;
  shelveReason?: string | null;
  outOfServiceBy?: string | null;
  outOfServiceReason?: string | null;
}

// ---- Server → client: the live stream ----

export interface WelcomeMessage {
  type: 'welcome';
  user: string;
  role: Role;
  protocol: 'msc.v1';
  /** The server pings this often; two unanswered pings end the connection. */
  heartbeatMs: number;
}

export interface ChannelReading {
  /** null when `fault` is true. */
  v: number | null;
  /** Device time of the frame that carried it. */
  t: number;
  fault?: true;
}

/** One console in a snapshot: the API's DEVICE object and its alarms that are not NORMAL. */
export interface SnapshotDevice {
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
  counters: {
    frames: number; telemetry: number; states: number; events: number; acks: number; discards: Record<string, number>;
    seqGaps: number; framesLost: number; duplicates: number; seqImplausible: number; reconnects: number;
  };
  clockOffsetMs: number | null;
  dataLateMs: number | null;
  telemetryPeriodMs: number | null;
  alarms: Alarm[];
}

/** A subscribe is answered by one or more parts; the last has `more: false`. */
export interface SnapshotMessage {
  type: 'snapshot';
  devices: SnapshotDevice[];
  more: boolean;
}

export interface TelemetryMessage {
  type: 'telemetry';
  device: string;
  seq: number;
  t: number;
  v: ChannelValues;
  /** How late the sample reached the gateway, ms (0 when on time). */
  late: number;
}

export interface StateMessage {
  type: 'state';
  device: string;
  seq: number;
  t: number;
  state: SessionState;
  sessionId: string | null;
  previous: SessionState | null;
}

export interface LinkMessage {
  type: 'link';
  device: string;
  link: LinkState;
  at: number;
  reason: string;
}

/** A console's own event (`EV` frame). */
export interface EventMessage {
  type: 'event';
  device: string;
  sessionId: string | null;
  seq: number;
  t: number;
  code: string;
  prio: DevicePriority;
  active: boolean;
  text: string;
}

/** One transition of one alarm instance; `alarm` is the instance after it. */
export interface AlarmMessage {
  type: 'alarm';
  device: string;
  kind: AlarmTransitionKind;
  at: number;
  from: AlarmState;
  to: AlarmState;
  alarm: Alarm;
  actor: Actor | null;
  reason: string | null;
}

/** AUDIO PAUSED of one console; `until` null ends it. */
export interface AudioPauseMessage {
  type: 'audioPause';
  device: string;
  until: number | null;
  actor: Actor | null;
}

/** The answer to a `command` message, echoing its `id`. 200: sent (see `result`); otherwise nothing was sent. */
export type CommandResultMessage =
  | { type: 'commandResult'; id: string | number; status: 200; cmdId: string; result: CommandResult; detail: string; tries: number }
  | { type: 'commandResult'; id: string | number | undefined; /** The HTTP route's status for the same refusal (src/errors.ts). */ status: number; error: string; message: string };

/**
 * The client's socket is backlogged (`active: true`): telemetry now carries only the latest sample per device
 * until it drains (`active: false`, with how many samples were replaced). Nothing else is ever dropped.
 */
export interface ConflatedMessage {
  type: 'conflated';
  active: boolean;
  devices: string[];
  dropped?: number;
}

/** A client message that was refused; `id` echoes the message's own when it had one. */
export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  id?: unknown;
  /** With `rate_limited`: when a subscribe would be taken again. */
  retryAfterMs?: number;
  /** With `invalid_message`: each offending field, as the HTTP API words it (`(body)` for the whole message). */
  issues?: Array<{ path: string; message: string }>;
}

export interface PongMessage {
  type: 'pong';
  id?: unknown;
  /** Gateway time. */
  t: number;
}

export type LiveMessage =
  | WelcomeMessage | SnapshotMessage | TelemetryMessage | StateMessage | LinkMessage | EventMessage | AlarmMessage
  | AudioPauseMessage | CommandResultMessage | ConflatedMessage | ErrorMessage | PongMessage;

// ---- Server → client: replay (engineer). Every replay message has `replay: true`; a live one never has. ----

export type ReplaySpeed = number | 'max';

/** Stored samples, in device-time order; `seq` is null when the source (InfluxDB) does not keep it. */
export interface ReplayTelemetryMessage {
  type: 'telemetry';
  replay: true;
  replayId: number;
  device: string;
  samples: Array<{ seq: number | null; t: number; v: ChannelValues }>;
  /** Device time of the last sample sent. */
  position: number;
}

/** What the replay's timeline marks, for the whole range. */
export interface ReplayMarkersMessage {
  type: 'replayMarkers';
  replay: true;
  replayId: number;
  device: string;
  /** Absent when markers could not be read at all (no journal). */
  session?: string | null;
  from: number;
  to: number;
  /** State changes, the one in force at `from` first. */
  states: Array<{ t: number; state: SessionState; sessionId: string | null }>;
  /** Alarm transitions; `t` is gateway time. */
  alarms: Array<{ t: number; kind: AlarmTransitionKind; id: string; rule: string; priority: AlarmPriority; state: AlarmState; message: string; actor: string | null }>;
  events: Array<{ t: number; code: string; prio: DevicePriority; active: boolean; text: string }>;
  annotations: Array<{ t: number; kind: string; subtype: string | null; text: string; user: string }>;
}

export interface ReplayStartedMessage {
  type: 'replay';
  replay: true;
  replayId: number;
  status: 'started';
  /** The `id` of the client's start message. */
  id?: string | number;
  session: string | null;
  from: number;
  to: number;
  speed: ReplaySpeed;
  source: 'influx' | 'journal';
}

/** The playhead moving through a gap in the data. */
export interface ReplayPositionMessage {
  type: 'replay';
  replay: true;
  replayId: number;
  status: 'position';
  position: number;
}

export interface ReplayStatusMessage {
  type: 'replay';
  replay: true;
  replayId: number;
  status: 'paused' | 'resumed' | 'speed' | 'seeked' | 'ended' | 'stopped';
  position: number;
  speed: ReplaySpeed;
  paused: boolean;
}

/** A replay message refused, or a replay that failed (storage_unavailable: it is stopped). */
export interface ReplayErrorMessage {
  type: 'replay';
  replay: true;
  status: 'error';
  error: string;
  message: string;
  /** With `invalid_message`: each offending field, as the HTTP API words it. */
  issues?: Array<{ path: string; message: string }>;
  id?: unknown;
}

export type ReplayMessage =
  | ReplayTelemetryMessage | ReplayMarkersMessage | ReplayStartedMessage | ReplayPositionMessage | ReplayStatusMessage
  | ReplayErrorMessage;

/** Everything the gateway sends. `'replay' in m` tells a replay message from a live one. */
export type ServerMessage = LiveMessage | ReplayMessage;

// ---- Client → server (the server validates each with zod: a wrong one is an `error`, never a crash) ----

/** Every device, present and future (`"*"`), or these device ids. */
export type DeviceSelection = '*' | string[];

export type ClientMessage =
  | { type: 'auth'; token: string }
  | { type: 'subscribe'; devices: DeviceSelection }
  | { type: 'unsubscribe'; devices: DeviceSelection }
  | { type: 'ping'; id?: unknown }
  | {
    type: 'command';
    /** The client's own reference, echoed in the commandResult. */
    id: string | number;
    device: string;
    verb: CommandVerb;
    args?: Array<string | number>;
    reason?: string | null;
  }
  | ReplayRequest;

/** Start a replay of a session, or of [from, to) (a start replaces the connection's running replay). */
export type ReplayRequest =
  | {
    type: 'replay'; action?: 'start'; id?: string | number; device: string; session?: string; from?: number; to?: number;
    speed?: ReplaySpeed;
  }
  | { type: 'replay'; action: 'pause' | 'resume' | 'stop'; id?: string | number }
  | { type: 'replay'; action: 'seek'; t: number; id?: string | number }
  | { type: 'replay'; action: 'speed'; speed: ReplaySpeed; id?: string | number };

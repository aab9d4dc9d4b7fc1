/**
 * Messages of the live stream `GET /ws`. Server messages are built here once per bus event and
 * serialised once for every client; client messages are validated with zod and never crash the hub. Their
 * shapes are protocol.ts's, which the browser shares: every builder here is typed against it, and the checks
 * at the end keep protocol.ts's copies of the gateway's types (alarms, devices, commands) in step.
 */
import { z } from 'zod';
import type * as A from '../alarms/types.js';
import type { AlarmInstance, AlarmTransition } from '../alarms/types.js';
import type { Role } from '../auth/roles.js';
import type { BusEvents, DeviceEvent, LinkChange, LinkState, StateChange, TelemetrySample, TransportKind } from '../bus.js';
import type { CommandResult } from '../control/commandService.js';
import { CommandBodySchema } from '../control/requestSchemas.js';
import type { ErrorCode, FieldIssue } from '../errors.js';
import type { DeviceSnapshot } from '../model/types.js';
import { isValidDeviceId, type ChannelValues, type CommandVerb, type DevicePriority, type SessionState } from '../protocol/types.js';
import type * as P from './protocol.js';

/** The subprotocol a browser offers beside `bearer.<TOKEN>`; the server echoes it, never the token. */
export const LIVE_PROTOCOL: P.WelcomeMessage['protocol'] = 'msc.v1';
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

/** The ingest's rule: an id that can never be a console is an error naming it, not a subscription to nothing. */
const DeviceId = z.string().min(1).max(64).superRefine((id, ctx) => {
  if (!isValidDeviceId(id)) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(id)} is not a device id${id === '*' ? ' (for every device send "devices":"*", not ["*"])' : ''}` });
  }
});
const DeviceSelection = z.union([z.literal('*'), z.array(DeviceId).max(1000)]);

export const ClientMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('auth'), token: z.string().min(1).max(512) }),
  z.object({ type: z.literal('subscribe'), devices: DeviceSelection }),
  z.object({ type: z.literal('unsubscribe'), devices: DeviceSelection }),
  z.object({ type: z.literal('ping'), id: z.unknown().optional() }),
  CommandBodySchema.extend({
    type: z.literal('command'),
    /** The client's own reference, echoed in the commandResult. */
    id: z.union([z.string().max(64), z.number()]),
    device: DeviceId,
  }),
]);
/** A client message after validation (defaults applied: a command's `args` is always an array). */
export type ParsedClientMessage = z.output<typeof ClientMessageSchema>;

/** The one place a server message becomes text: whatever is sent is a protocol.ts ServerMessage. */
export function encode(m: P.ServerMessage): string {
  return JSON.stringify(m);
}

export function welcomeMessage(user: string, role: Role, heartbeatMs: number): string {
  return encode({ type: 'welcome', user, role, protocol: LIVE_PROTOCOL, heartbeatMs });
}

export function telemetryMessage(s: TelemetrySample): string {
  return encode({ type: 'telemetry', device: s.deviceId, seq: s.seq, t: s.t, v: s.v, late: s.lateMs ?? 0 });
}

export function stateMessage(s: StateChange): string {
  return encode({
    type: 'state', device: s.deviceId, seq: s.seq, t: s.t, state: s.state, sessionId: s.sessionId, previous: s.previous,
  });
}

export function linkMessage(l: LinkChange): string {
  return encode({ type: 'link', device: l.deviceId, link: l.link, at: l.at, reason: l.reason });
}

export function eventMessage(e: DeviceEvent): string {
  return encode({
    type: 'event', device: e.deviceId, sessionId: e.sessionId, seq: e.seq, t: e.t, code: e.code, prio: e.prio,
    active: e.active, text: e.text,
  });
}

export function alarmMessage(tr: AlarmTransition): string {
  return encode({
    type: 'alarm', device: tr.alarm.device, kind: tr.kind, at: tr.at, from: tr.from, to: tr.to, alarm: tr.alarm,
    actor: tr.actor, reason: tr.reason,
  });
}

export function audioPauseMessage(p: BusEvents['audioPause']): string {
  return encode({ type: 'audioPause', device: p.deviceId, until: p.until, actor: p.actor });
}

/** One device of a snapshot, serialised: only snapshotDevice makes one, only snapshotMessage takes it. */
export type SnapshotDeviceJson = string & { readonly __snapshotDevice: true };

/** One device of a snapshot: its DEVICE object and its active alarms. */
export function snapshotDevice(snap: DeviceSnapshot, alarms: AlarmInstance[]): SnapshotDeviceJson {
  const device: P.SnapshotDevice = { ...snap, alarms };
  return JSON.stringify(device) as SnapshotDeviceJson;
}

/**
 * One part of a snapshot (P.SnapshotMessage), from devices already serialised by snapshotDevice, so a device
 * is encoded once however many clients ask. A subscribe is answered by one or more parts; the last has
 * `more: false`.
 */
export function snapshotMessage(devices: readonly SnapshotDeviceJson[], more: boolean): string {
  return `{"type":"snapshot","devices":[${devices.join(',')}],"more":${more}}`;
}

export function conflatedMessage(active: boolean, devices: string[], dropped?: number): string {
  return encode({ type: 'conflated', active, devices, dropped });
}

/**
 * `{"type":"error","code","message","issues"?,"id"?}`: the codes and the issue format are the HTTP API's
 * (src/errors.ts), so a client reads a refused live message the way it reads a refused request.
 */
export function errorMessage(code: ErrorCode, message: string, id?: unknown, extra?: { issues?: FieldIssue[]; retryAfterMs?: number }): string {
  return encode({ type: 'error', code, message, id, ...extra });
}

export function pongMessage(id: unknown, t: number): string {
  return encode({ type: 'pong', id, t });
}

/** A commandResult without its `type` (distributed over its variants: sent, or refused with an error). */
export type CommandReply = P.CommandResultMessage extends infer M ? M extends unknown ? Omit<M, 'type'> : never : never;

export function commandResultMessage(reply: CommandReply): string {
  return encode({ type: 'commandResult', ...reply });
}

// ---- protocol.ts repeats these gateway types (it may import nothing); a difference fails the build here. ----

/** `true` when X and Y are the same type; `Check` accepts only `true`, so a difference is a compile error. */
export type Same<X, Y> = [X] extends [Y] ? ([Y] extends [X] ? true : false) : false;
export type Check<T extends true> = T;
export type ProtocolInStep = [
  Check<Same<P.Role, Role>>,
  Check<Same<P.SessionState, SessionState>>,
  Check<Same<P.LinkState, LinkState>>,
  Check<Same<P.TransportKind, TransportKind>>,
  Check<Same<P.DevicePriority, DevicePriority>>,
  Check<Same<P.CommandVerb, CommandVerb>>,
  Check<Same<P.CommandResult, CommandResult>>,
  Check<Same<P.ChannelValues, ChannelValues>>,
  Check<Same<P.AlarmPriority, A.AlarmPriority>>,
  Check<Same<P.AlarmSource, A.AlarmSource>>,
  Check<Same<P.AlarmState, A.AlarmState>>,
  Check<Same<P.AlarmTransitionKind, A.AlarmTransitionKind>>,
  Check<Same<P.Actor, A.Actor>>,
  Check<Same<P.Alarm, AlarmInstance>>,
  Check<Same<P.SnapshotDevice, DeviceSnapshot & { alarms: AlarmInstance[] }>>,
  // What a client may send is what the server's schemas accept (before their defaults are applied).
  Check<Same<Exclude<P.ClientMessage, { type: 'replay' }>, z.input<typeof ClientMessageSchema>>>,
];

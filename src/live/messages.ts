/**
 * Messages of the live stream `GET /ws` (issue 5). Server messages are built here once per bus event and
 * serialised once for every client; client messages are validated with zod and never crash the hub.
 */
import { z } from 'zod';
import type { AlarmInstance, AlarmTransition } from '../alarms/types.js';
import type { BusEvents, DeviceEvent, LinkChange, StateChange, TelemetrySample } from '../bus.js';
import { CommandBodySchema } from '../control/requestSchemas.js';
import type { ErrorCode, FieldIssue } from '../errors.js';
import type { DeviceSnapshot } from '../model/types.js';
import { isValidDeviceId } from '../protocol/types.js';

/** The subprotocol a browser offers beside `bearer.<TOKEN>`; the server echoes it, never the token. */
export const LIVE_PROTOCOL = 'msc.v1';
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
export type ClientMessage = z.infer<typeof ClientMessageSchema>;

export function telemetryMessage(s: TelemetrySample): string {
  return JSON.stringify({ type: 'telemetry', device: s.deviceId, seq: s.seq, t: s.t, v: s.v, late: s.lateMs ?? 0 });
}

export function stateMessage(s: StateChange): string {
  return JSON.stringify({
    type: 'state', device: s.deviceId, seq: s.seq, t: s.t, state: s.state, sessionId: s.sessionId, previous: s.previous,
  });
}

export function linkMessage(l: LinkChange): string {
  return JSON.stringify({ type: 'link', device: l.deviceId, link: l.link, at: l.at, reason: l.reason });
}

export function eventMessage(e: DeviceEvent): string {
  return JSON.stringify({
    type: 'event', device: e.deviceId, sessionId: e.sessionId, seq: e.seq, t: e.t, code: e.code, prio: e.prio,
    active: e.active, text: e.text,
  });
}

export function alarmMessage(tr: AlarmTransition): string {
  return JSON.stringify({
    type: 'alarm', device: tr.alarm.device, kind: tr.kind, at: tr.at, from: tr.from, to: tr.to, alarm: tr.alarm,
    actor: tr.actor, reason: tr.reason,
  });
}

export function audioPauseMessage(p: BusEvents['audioPause']): string {
  return JSON.stringify({ type: 'audioPause', device: p.deviceId, until: p.until, actor: p.actor });
}

/** One device of a snapshot: its DEVICE object and its active alarms. */
export function snapshotDevice(snap: DeviceSnapshot, alarms: AlarmInstance[]): string {
  return JSON.stringify({ ...snap, alarms });
}

/**
 * One part of a snapshot, from devices already serialised by snapshotDevice. A subscribe is answered by one or
 * more parts; the last has `more: false`.
 */
export function snapshotMessage(devices: readonly string[], more: boolean): string {
  return `{"type":"snapshot","devices":[${devices.join(',')}],"more":${more}}`;
}

export function conflatedMessage(active: boolean, devices: string[], dropped?: number): string {
  return JSON.stringify({ type: 'conflated', active, devices, dropped });
}

/**
 * `{"type":"error","code","message","issues"?,"id"?}`: the codes and the issue format are the HTTP API's
 * (src/errors.ts), so a client reads a refused live message the way it reads a refused request.
 */
export function errorMessage(code: ErrorCode, message: string, id?: unknown, extra?: { issues?: FieldIssue[]; retryAfterMs?: number }): string {
  return JSON.stringify({ type: 'error', code, message, id, ...extra });
}

/**
 * ICD §2 MQTT binding: same frames as serial, JSON payloads under `<prefix>/<device_id>/<kind>`.
 * The topic is the device's identity. Payloads are validated with zod; what fails is a Discard, never
 * an exception.
 */
import { z } from 'zod';
import { CMD_ID_RE } from './commands.js';
import type { CommandDecode } from './serial.js';
import {
  COMMAND_VERBS, MAX_DEVICE_TIME_MS, SESSION_STATES, discard, helloProblem, isChannelKey, isValidDeviceId,
} from './types.js';
import type {
  AckFrame, ChannelValues, Command, CommandVerb, DeviceFrame, Discard, EventFrame, HelloFrame, StateFrame,
  TelemetryFrame,
} from './types.js';

export type MqttKind = 'hello' | 'status' | 'telemetry' | 'state' | 'event' | 'ack' | 'cmd';
const KINDS: ReadonlySet<string> = new Set<MqttKind>(['hello', 'status', 'telemetry', 'state', 'event', 'ack', 'cmd']);
const VERBS: ReadonlySet<string> = new Set(COMMAND_VERBS);

/** `<prefix>/<device_id>/<kind>` -> parts; null for any other topic. A trailing '/' on prefix is ignored. */
export function parseTopic(prefix: string, topic: string): { deviceId: string; kind: MqttKind } | null {
  const root = prefix.endsWith('/') ? prefix : prefix + '/';
  if (!topic.startsWith(root)) return null;
  const rest = topic.slice(root.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const deviceId = rest.slice(0, slash);
  const kind = rest.slice(slash + 1);
  if (!isValidDeviceId(deviceId) || !KINDS.has(kind)) return null;
  return { deviceId, kind: kind as MqttKind };
}

const seq = z.int().min(0).max(0xffffffff);
const time = z.int().min(0).max(MAX_DEVICE_TIME_MS);

/**
 * `v`: own keys per isChannelKey (unknown channels kept), values finite numbers or null. Hand-checked
 * because z.record silently drops a `__proto__` key instead of reporting it.
 */
const channelValues = z.unknown().superRefine((val, ctx) => {
  if (typeof val !== 'object' || val === null || Array.isArray(val)) {
    ctx.addIssue({ code: 'custom', message: 'v must be an object' });
    return;
  }
  for (const [key, value] of Object.entries(val)) {
    if (!isChannelKey(key)) ctx.addIssue({ code: 'custom', message: `channel key ${JSON.stringify(key)} is not valid` });
    else if (value !== null && (typeof value !== 'number' || !Number.isFinite(value))) {
      ctx.addIssue({ code: 'custom', message: `${key} must be a number or null` });
    }
  }
});

const telemetrySchema = z.object({ seq, t: time, v: channelValues });
const helloSchema = z.object({
  deviceId: z.string().min(1), model: z.string(), fw: z.string(), icd: z.int().min(0), serialNo: z.string(),
});
const stateSchema = z.object({
  seq, t: time, state: z.enum(SESSION_STATES), sessionId: z.string().min(1).nullable(),
});
// ICD: EV text and ACK detail may be absent and read as empty, as on serial (serial.ts).
const eventSchema = z.object({
  seq, t: time, code: z.string().min(1), prio: z.enum(['H', 'M', 'L', 'I']), active: z.boolean(),
  text: z.string().optional(),
});
const ackSchema = z.object({
  id: z.string().regex(CMD_ID_RE), result: z.enum(['OK', 'REJ', 'ERR']), detail: z.string().optional(),
});

type Decoded = { frames: DeviceFrame[]; discards: Discard[] };

function issueText(error: z.ZodError): string {
  const issue = error.issues[0];
  const path = issue.path.length > 0 ? issue.path.join('.') + ': ' : '';
  return path + issue.message;
}

/** JSON -0 is a zero; frames never carry -0. */
const zero = (n: number): number => n + 0;

function telemetryFrame(data: z.infer<typeof telemetrySchema>): TelemetryFrame {
  const v: ChannelValues = {};
  for (const [key, value] of Object.entries(data.v as Record<string, number | null>)) {
    v[key] = value === null ? null : zero(value);
  }
  return { type: 'T', seq: zero(data.seq), t: zero(data.t), v };
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const inRange = (x: unknown, max: number): x is number => Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= max;

/**
 * telemetrySchema's verdict without zod, for the valid case only (telemetry is nearly every message, and zod
 * costs more than the rest of the decode): the frame when `item` is valid, null when it is not, and the caller
 * then asks zod for the error text. test/unit/protocol/mqttFast.test.ts holds the two to the same verdict.
 */
function telemetryFast(item: unknown): TelemetryFrame | null {
  if (!isObject(item)) return null;
  const { seq: s, t, v } = item;
  if (!inRange(s, 0xffffffff) || !inRange(t, MAX_DEVICE_TIME_MS) || !isObject(v)) return null;
  // JSON.parse made `v`: a plain object of own keys, used as it is unless a -0 must become 0 (no copy per sample).
  let negativeZero = false;
  for (const key in v) {
    if (!Object.hasOwn(v, key)) continue;
    const value = v[key];
    if (!isChannelKey(key)) return null;
    if (value === null) continue;
    if (typeof value !== 'number' || !Number.isFinite(value)) return null;
    if (value === 0 && Object.is(value, -0)) negativeZero = true;
  }
  let values = v as ChannelValues;
  if (negativeZero || Object.getPrototypeOf(v) !== Object.prototype) {
    values = {};
    for (const key in v) if (Object.hasOwn(v, key)) values[key] = v[key] === null ? null : zero(v[key] as number);
  }
  return { type: 'T', seq: zero(s), t: zero(t), v: values };
}

/** The zod path of decodeMqttPayload's telemetry, for the test that holds telemetryFast to it. */
export function telemetryBySchema(item: unknown): TelemetryFrame | null {
  const r = telemetrySchema.safeParse(item);
  return r.success ? telemetryFrame(r.data) : null;
}
export { telemetryFast };

/**
 * One MQTT payload of `kind` from device `topicDeviceId`. telemetry: one object or an array (devices
 * batch up to 100; more are accepted): every invalid element is one `schema` discard, valid ones are
 * kept. Bad JSON is one `invalid_json`. status: `online`/`offline`, plain or JSON-quoted.
 */
export function decodeMqttPayload(kind: MqttKind, payload: Buffer | string, topicDeviceId: string): Decoded {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  const out: Decoded = { frames: [], discards: [] };
  if (kind === 'status') {
    const word = text.trim();
    if (word === 'online' || word === '"online"') out.frames.push({ type: 'STATUS', online: true });
    else if (word === 'offline' || word === '"offline"') out.frames.push({ type: 'STATUS', online: false });
    else out.discards.push(discard('schema', text, 'status must be online or offline'));
    return out;
  }
  if (kind === 'cmd') {
    out.discards.push(discard('unknown_type', text, 'cmd is gateway-to-device; a device never sends it'));
    return out;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    out.discards.push(discard('invalid_json', text, err instanceof Error ? err.message : 'invalid JSON'));
    return out;
  }
  switch (kind) {
    case 'telemetry': {
      const batch = Array.isArray(json);
      const items: unknown[] = Array.isArray(json) ? json : [json];
      for (let i = 0; i < items.length; i++) {
        const fast = telemetryFast(items[i]);
        if (fast) {
          out.frames.push(fast);
          continue;
        }
        const r = telemetrySchema.safeParse(items[i]);
        if (r.success) out.frames.push(telemetryFrame(r.data));
        else {
          const raw = batch ? JSON.stringify(items[i]) ?? '' : text;
          out.discards.push(discard('schema', raw, (batch ? `[${i}] ` : '') + issueText(r.error)));
        }
      }
      return out;
    }
    case 'hello': {
      const r = helloSchema.safeParse(json);
      if (!r.success) out.discards.push(discard('schema', text, issueText(r.error)));
      else if (r.data.deviceId !== topicDeviceId) {
        out.discards.push(discard('schema', text, `deviceId ${JSON.stringify(r.data.deviceId)} differs from topic ${JSON.stringify(topicDeviceId)}`));
      } else {
        const problem = helloProblem(r.data);
        if (problem) out.discards.push(discard('schema', text, `hello: ${problem}`));
        else out.frames.push({ type: 'HELLO', ...r.data } satisfies HelloFrame);
      }
      return out;
    }
    case 'state': {
      const r = stateSchema.safeParse(json);
      if (!r.success) out.discards.push(discard('schema', text, issueText(r.error)));
      else out.frames.push({ type: 'S', ...r.data, seq: zero(r.data.seq), t: zero(r.data.t) } satisfies StateFrame);
      return out;
    }
    case 'event': {
      const r = eventSchema.safeParse(json);
      if (!r.success) out.discards.push(discard('schema', text, issueText(r.error)));
      else {
        const { seq: s, t, code, prio, active, text: evText } = r.data;
        out.frames.push({ type: 'EV', seq: zero(s), t: zero(t), code, prio, active, text: evText ?? '' } satisfies EventFrame);
      }
      return out;
    }
    case 'ack': {
      const r = ackSchema.safeParse(json);
      if (!r.success) out.discards.push(discard('schema', text, issueText(r.error)));
      else out.frames.push({ type: 'ACK', cmdId: r.data.id, result: r.data.result, detail: r.data.detail ?? '' } satisfies AckFrame);
      return out;
    }
  }
}

/** Gateway side: `{"id","verb","args"}`. */
export function encodeMqttCommand(cmd: Command): string {
  for (const arg of cmd.args) {
    if (typeof arg === 'number' && !Number.isFinite(arg)) throw new RangeError(`cannot encode arg ${arg}`);
  }
  return JSON.stringify({ id: cmd.cmdId, verb: cmd.verb, args: cmd.args });
}

/**
 * Device side (simulator). Bad JSON or a non-object is a Discard (the device stays silent); a bad id is
 * `malformed_command` with cmdId null; a bad verb or args is `malformed_command` with the cmdId (answer
 * ACK ERR). A missing `args` reads as []. checkCommand does arity, types and limits.
 */
export function decodeMqttCommand(payload: Buffer | string): CommandDecode {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return discard('invalid_json', text, err instanceof Error ? err.message : 'invalid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return discard('schema', text, 'cmd must be an object');
  const { id, verb, args } = json as Record<string, unknown>;
  if (typeof id !== 'string' || !CMD_ID_RE.test(id)) {
    return { type: 'malformed_command', cmdId: null, detail: 'id must be 1-8 characters of [A-Za-z0-9]' };
  }
  if (typeof verb !== 'string' || !VERBS.has(verb)) {
    return { type: 'malformed_command', cmdId: id, detail: `unknown verb ${JSON.stringify(verb ?? null)}` };
  }
  const list = args === undefined ? [] : args;
  if (!Array.isArray(list) || !list.every((a) => typeof a === 'string' || (typeof a === 'number' && Number.isFinite(a)))) {
    return { type: 'malformed_command', cmdId: id, detail: 'args must be an array of strings and numbers' };
  }
  return { type: 'command', cmd: { cmdId: id, verb: verb as CommandVerb, args: list as (string | number)[] } };
}

type MqttOutFrame = HelloFrame | TelemetryFrame | StateFrame | EventFrame | AckFrame;

function checkValues(v: ChannelValues): ChannelValues {
  for (const key of Object.keys(v)) {
    const value = v[key];
    if (!isChannelKey(key)) throw new RangeError(`channel key ${JSON.stringify(key)} is not valid`);
    if (value !== null && !Number.isFinite(value)) throw new RangeError(`${key} = ${value} cannot be sent`);
  }
  return v;
}

function payloadObject(f: MqttOutFrame): object {
  switch (f.type) {
    case 'HELLO': return { deviceId: f.deviceId, model: f.model, fw: f.fw, icd: f.icd, serialNo: f.serialNo };
    case 'T': return { seq: f.seq, t: f.t, v: checkValues(f.v) };
    case 'S': return { seq: f.seq, t: f.t, state: f.state, sessionId: f.sessionId };
    case 'EV': return { seq: f.seq, t: f.t, code: f.code, prio: f.prio, active: f.active, text: f.text };
    case 'ACK': return { id: f.cmdId, result: f.result, detail: f.detail };
    default: throw new RangeError(`cannot encode frame type ${(f as { type: string }).type}`);
  }
}

/** Device side (simulator): the JSON payload of one frame, or of a telemetry batch. */
export function encodeMqttPayload(f: MqttOutFrame | TelemetryFrame[]): string {
  return JSON.stringify(Array.isArray(f) ? f.map(payloadObject) : payloadObject(f));
}

/**
 * ICD §1 serial binding: `$` BODY `*` CRC, one frame per line. Decoding never throws on device bytes:
 * whatever is not a frame comes back as a Discard. The decoder is the hot path of every
 * serial port, so it walks char codes instead of splitting and matching regexes per field.
 */
import { CMD_ID_RE } from './commands.js';
import { CRC16_TABLE, crcHex, formatCrc, parseCrc } from './crc.js';
import {
  COMMAND_VERBS, MAX_DEVICE_TIME_MS, SESSION_STATES, discard, formatDecimal, helloProblem, isChannelKey, parseDecimal,
} from './types.js';
import type {
  AckFrame, ChannelValues, Command, CommandVerb, DeviceFrame, Discard, EventFrame, HelloFrame,
  SessionState, StateFrame, TelemetryFrame,
} from './types.js';

/** ICD §1: a frame is at most 512 bytes including `$` and CR LF. */
export const MAX_FRAME_BYTES = 512;
/** The longest line content, i.e. a frame without its CR LF. */
export const MAX_LINE_CHARS = MAX_FRAME_BYTES - 2;

export type LineResult = DeviceFrame | Discard;

export type CommandDecode =
  | { type: 'command'; cmd: Command }
  | { type: 'malformed_command'; cmdId: string | null; detail: string }
  | Discard;

const CR = 0x0d;
const COMMA = 0x2c;
const STAR = 0x2a;
const STATES: ReadonlySet<string> = new Set(SESSION_STATES);
const VERBS: ReadonlySet<string> = new Set(COMMAND_VERBS);

/**
 * One received line WITHOUT its line terminator (a trailing '\r' is tolerated and stripped). Never throws.
 * Bytes before the last `$` are one `leading_garbage` discard and the rest is still decoded, so a line
 * yields 0 (empty line), 1 or 2 results. A line over MAX_LINE_CHARS is one `too_long` discard, whole
 * (ICD §1 "the receiver discards a longer line"), whatever it holds.
 */
export function decodeLine(line: string): LineResult[] {
  let end = line.length;
  if (end > 0 && line.charCodeAt(end - 1) === CR) end--;
  if (end === 0) return [];
  if (end > MAX_LINE_CHARS) return [discard('too_long', line, `${end + 2} bytes with CR LF, limit ${MAX_FRAME_BYTES}`)];
  const start = line.lastIndexOf('$', end - 1);
  if (start < 0) return [discard('leading_garbage', line.slice(0, end), `${end} bytes without '$'`)];
  const result = decodeFrame(line, start, end);
  if (start === 0) return [result];
  return [discard('leading_garbage', line.slice(0, start), `${start} bytes before '$'`), result];
}

/**
 * Checks `$` BODY `*` CRC in line[start, end): returns the index of the `*`, or a Discard.
 * Order: framing, then CRC (line noise is bad_crc), then the BODY alphabet (a frame with a good CRC
 * and a forbidden byte is the device's fault: malformed).
 */
function unframe(line: string, start: number, end: number): number | Discard {
  const star = end - 5;
  if (star <= start || line.charCodeAt(star) !== STAR) {
    return discard('malformed', line.slice(start, end), "missing '*CRC' (4 hex digits) at the end");
  }
  const sent = parseCrc(line, star + 1);
  if (sent < 0) return discard('malformed', line.slice(start, end), 'CRC must be 4 upper-case hex digits');
  // One pass for CRC and BODY alphabet: this loop is most of the cost of a line.
  let crc = 0xffff;
  let bad = -1;
  for (let i = start + 1; i < star; i++) {
    const c = line.charCodeAt(i);
    if (((c - 0x20) >>> 0 > 0x5e || c === STAR) && bad < 0) bad = i;
    crc = ((crc << 8) ^ CRC16_TABLE[((crc >>> 8) ^ c) & 0xff]) & 0xffff;
  }
  if (crc !== sent) {
    return discard('bad_crc', line.slice(start, end), `CRC ${line.slice(star + 1, end)} sent, ${formatCrc(crc)} computed`);
  }
  if (bad >= 0) {
    const c = line.charCodeAt(bad);
    return discard('malformed', line.slice(start, end), `byte 0x${c.toString(16)} not allowed in BODY at ${bad - start}`);
  }
  return star;
}

function decodeFrame(line: string, start: number, end: number): LineResult {
  const star = unframe(line, start, end);
  if (typeof star !== 'number') return star;
  const body = start + 1;
  if (star === body) return discard('malformed', line.slice(start, end), 'empty BODY');
  const typeEnd = nextComma(line, body, star);
  const type = line.slice(body, typeEnd);
  let frame: DeviceFrame | string;
  switch (type) {
    case 'T': frame = telemetry(line, typeEnd, star); break;
    case 'S': frame = state(line, typeEnd, star); break;
    case 'EV': frame = event(line, typeEnd, star); break;
    case 'ACK': frame = ack(line, typeEnd, star); break;
    case 'HELLO': {
      frame = hello(line.slice(typeEnd + 1, star), typeEnd < star);
      // A well-formed HELLO whose fields are out of bounds is refused like an MQTT hello that fails its schema.
      const problem = typeof frame === 'string' ? null : helloProblem(frame as HelloFrame);
      if (problem) return discard('schema', line.slice(start, end), `HELLO: ${problem}`);
      break;
    }
    case 'CMD':
      return discard('unknown_type', line.slice(start, end), 'CMD is gateway-to-device; a device never sends it');
    default:
      return discard('unknown_type', line.slice(start, end), `unknown frame type ${JSON.stringify(type.slice(0, 16))}`);
  }
  return typeof frame === 'string' ? discard('malformed', line.slice(start, end), `${type}: ${frame}`) : frame;
}

// Field parsers work on line[from, to) and return -1 (or NaN) for "not valid"; callers turn that
// into a malformed discard with a reason.

function nextComma(line: string, from: number, to: number): number {
  const i = line.indexOf(',', from);
  return i < 0 || i > to ? to : i;
}

/** ICD §1 seq (max 2^32-1), t_ms and icd_version (max 2^53-1): unsigned decimal integers. */
function parseUnsigned(line: string, from: number, to: number, max: number): number {
  if (from >= to) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = line.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
    if (n > max) return -1;
  }
  return n;
}

// seqAndTime's results; module scratch instead of a tuple per frame (the decoder is synchronous).
let headSeq = 0;
let headTime = 0;

/** Parses `,seq,t_ms` after the type into headSeq/headTime; returns the index after t_ms or an error. */
function seqAndTime(line: string, typeEnd: number, to: number): number | string {
  if (typeEnd >= to) return 'missing seq';
  const seqEnd = nextComma(line, typeEnd + 1, to);
  headSeq = parseUnsigned(line, typeEnd + 1, seqEnd, 0xffffffff);
  if (headSeq < 0) return `seq ${JSON.stringify(line.slice(typeEnd + 1, seqEnd))} is not an unsigned 32-bit decimal`;
  if (seqEnd >= to) return 'missing t_ms';
  const tEnd = nextComma(line, seqEnd + 1, to);
  headTime = parseUnsigned(line, seqEnd + 1, tEnd, MAX_DEVICE_TIME_MS);
  if (headTime < 0) return `t_ms ${JSON.stringify(line.slice(seqEnd + 1, tEnd))} is not a non-negative integer up to ${MAX_DEVICE_TIME_MS}`;
  return tEnd;
}

/**
 * Channel keys seen before, by a hash of their chars: a hit costs no slice and hands V8 an internalized
 * property name. Only valid keys enter, and at most KEY_CACHE_MAX, so noise cannot grow it.
 */
const KEY_CACHE = new Map<number, string>();
const KEY_CACHE_MAX = 1024;

function channelKey(line: string, from: number, end: number, hash: number): string | null {
  const cached = KEY_CACHE.get(hash);
  if (cached !== undefined && cached.length === end - from && line.startsWith(cached, from)) return cached;
  const key = line.slice(from, end);
  if (!isChannelKey(key)) return null;
  if (KEY_CACHE.size >= KEY_CACHE_MAX) return key;
  const internalized = Object.keys({ [key]: 0 })[0];
  KEY_CACHE.set(hash, internalized);
  return internalized;
}

function telemetry(line: string, typeEnd: number, to: number): TelemetryFrame | string {
  let p = seqAndTime(line, typeEnd, to);
  if (typeof p === 'string') return p;
  const seq = headSeq;
  const t = headTime;
  const v: ChannelValues = {};
  while (p < to) {
    const from = p + 1;
    let eq = from;
    let hash = 0;
    let c = 0;
    for (; eq < to; eq++) {
      c = line.charCodeAt(eq);
      if (c === 0x3d || c === COMMA) break;
      hash = (Math.imul(hash, 31) + c) | 0;
    }
    if (eq >= to || c !== 0x3d) return `channel ${JSON.stringify(line.slice(from, nextComma(line, from, to)))} is not KEY=VALUE`;
    const key = channelKey(line, from, eq, hash);
    if (key === null) return `channel key ${JSON.stringify(line.slice(from, eq))} is not a letter then [A-Za-z0-9_]`;
    // ICD: a key twice in one frame leaves its value ambiguous; the safe reading is to trust neither.
    if (Object.hasOwn(v, key)) return `channel ${key} twice`;
    p = nextComma(line, eq + 1, to);
    if (p - eq === 2 && line.charCodeAt(eq + 1) === 0x21) {
      v[key] = null;
    } else {
      const value = parseDecimal(line, eq + 1, p);
      if (Number.isNaN(value)) return `${key} value ${JSON.stringify(line.slice(eq + 1, p))} is not a decimal or '!'`;
      v[key] = value;
    }
  }
  return { type: 'T', seq, t, v };
}

function state(line: string, typeEnd: number, to: number): StateFrame | string {
  const p = seqAndTime(line, typeEnd, to);
  if (typeof p === 'string') return p;
  if (p >= to) return 'missing state';
  const stateEnd = nextComma(line, p + 1, to);
  const name = line.slice(p + 1, stateEnd);
  if (!STATES.has(name)) return `unknown state ${JSON.stringify(name)}`;
  if (stateEnd >= to) return 'missing session_id';
  const session = line.slice(stateEnd + 1, to);
  if (session.length === 0) return "empty session_id (the ICD writes '-' for none)";
  if (session.includes(',')) return 'more than 4 fields';
  return { type: 'S', seq: headSeq, t: headTime, state: name as SessionState, sessionId: session === '-' ? null : session };
}

function event(line: string, typeEnd: number, to: number): EventFrame | string {
  const p = seqAndTime(line, typeEnd, to);
  if (typeof p === 'string') return p;
  if (p >= to) return 'missing code';
  const codeEnd = nextComma(line, p + 1, to);
  const code = line.slice(p + 1, codeEnd);
  if (code.length === 0) return 'empty code';
  if (codeEnd + 2 > to || (codeEnd + 2 < to && line.charCodeAt(codeEnd + 2) !== COMMA)) return 'priority must be H, M, L or I';
  const prio = line[codeEnd + 1];
  if (prio !== 'H' && prio !== 'M' && prio !== 'L' && prio !== 'I') return 'priority must be H, M, L or I';
  const activeAt = codeEnd + 3;
  if (activeAt >= to || (activeAt + 1 < to && line.charCodeAt(activeAt + 1) !== COMMA)) return 'active must be 1 or 0';
  const active = line[activeAt];
  if (active !== '1' && active !== '0') return 'active must be 1 or 0';
  // ICD: text is the last field and may itself hold commas, so it is everything after `active,`.
  // A missing text field reads as empty: dropping a device alarm over its free text would be unsafe.
  const text = activeAt + 1 < to ? line.slice(activeAt + 2, to) : '';
  return { type: 'EV', seq: headSeq, t: headTime, code, prio, active: active === '1', text };
}

function ack(line: string, typeEnd: number, to: number): AckFrame | string {
  if (typeEnd >= to) return 'missing cmd_id';
  const idEnd = nextComma(line, typeEnd + 1, to);
  const cmdId = line.slice(typeEnd + 1, idEnd);
  if (!CMD_ID_RE.test(cmdId)) return `cmd_id ${JSON.stringify(cmdId)} is not 1-8 of [A-Za-z0-9]`;
  if (idEnd >= to) return 'missing result';
  const resultEnd = nextComma(line, idEnd + 1, to);
  const result = line.slice(idEnd + 1, resultEnd);
  if (result !== 'OK' && result !== 'REJ' && result !== 'ERR') return 'result must be OK, REJ or ERR';
  // ICD: detail "may be empty" and is the last field (commas kept); an absent field reads as empty.
  const detail = resultEnd < to ? line.slice(resultEnd + 1, to) : '';
  return { type: 'ACK', cmdId, result, detail };
}

function hello(rest: string, hasFields: boolean): HelloFrame | string {
  const f = hasFields ? rest.split(',') : [];
  if (f.length !== 5) return `5 fields expected after HELLO, got ${f.length}`;
  if (f[0].length === 0) return 'empty device_id';
  const icd = parseUnsigned(f[3], 0, f[3].length, Number.MAX_SAFE_INTEGER);
  if (icd < 0) return `icd_version ${JSON.stringify(f[3])} is not an integer`;
  return { type: 'HELLO', deviceId: f[0], model: f[1], fw: f[2], icd, serialNo: f[4] };
}

// ---- Encoding (device side for frames, gateway side for commands) ----

type DeviceOutFrame = HelloFrame | TelemetryFrame | StateFrame | EventFrame | AckFrame;

/** A whole field that must survive framing as is (ids, names): a programmer error otherwise. */
function field(name: string, s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x24 || c === STAR || c === COMMA) {
      throw new RangeError(`${name} ${JSON.stringify(s)} holds a byte a frame field cannot carry`);
    }
  }
  return s;
}

/** Free text (EV text, ACK detail): `$`, `*` and non-printables become spaces; commas stay (last field). */
function sanitise(text: string): string {
  return text.replace(/[^\x20-\x7e]|[$*]/g, ' ');
}

function integer(name: string, n: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new RangeError(`${name} ${n} is not an integer 0..${max}`);
  return n;
}

function frame(body: string): string {
  const out = `$${body}*${crcHex(body)}\r\n`;
  if (out.length > MAX_FRAME_BYTES) throw new RangeError(`frame of ${out.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  return out;
}

/** Cuts free text so the whole frame stays within MAX_FRAME_BYTES (the device would truncate too). */
function withText(head: string, text: string): string {
  const room = MAX_FRAME_BYTES - (head.length + 8); // `$` + `*XXXX` + CR LF
  const clean = sanitise(text);
  return head + (clean.length > room ? clean.slice(0, Math.max(0, room)) : clean);
}

/**
 * Device side (simulator): `$BODY*CRC\r\n`. Numbers via formatDecimal (`decimals` per channel key);
 * null -> `!`. Throws RangeError for values no device could send (non-finite numbers, bad keys,
 * separators inside id fields, a frame over 512 bytes).
 */
export function encodeDeviceFrame(f: DeviceOutFrame, decimals?: Record<string, number>): string {
  switch (f.type) {
    case 'HELLO':
      return frame(`HELLO,${field('deviceId', f.deviceId)},${field('model', f.model)},${field('fw', f.fw)},`
        + `${integer('icd', f.icd)},${field('serialNo', f.serialNo)}`);
    case 'T': {
      let body = `T,${integer('seq', f.seq, 0xffffffff)},${integer('t', f.t)}`;
      for (const key of Object.keys(f.v)) {
        if (!isChannelKey(key)) throw new RangeError(`channel key ${JSON.stringify(key)} is not valid`);
        const value = f.v[key];
        body += `,${key}=${value === null ? '!' : formatDecimal(value, decimals?.[key])}`;
      }
      return frame(body);
    }
    case 'S':
      if (f.sessionId === '-' || f.sessionId === '') throw new RangeError(`sessionId ${JSON.stringify(f.sessionId)} would read as none`);
      return frame(`S,${integer('seq', f.seq, 0xffffffff)},${integer('t', f.t)},${field('state', f.state)},`
        + (f.sessionId === null ? '-' : field('sessionId', f.sessionId)));
    case 'EV':
      return frame(withText(`EV,${integer('seq', f.seq, 0xffffffff)},${integer('t', f.t)},${field('code', f.code)},${field('prio', f.prio)},`
        + `${f.active ? '1' : '0'},`, f.text));
    case 'ACK':
      return frame(withText(`ACK,${field('cmdId', f.cmdId)},${field('result', f.result)},`, f.detail));
    default:
      throw new RangeError(`cannot encode frame type ${(f as { type: string }).type}`);
  }
}

/** Gateway side: `$CMD,id,VERB[,args]*CRC\r\n`. Validity is checkCommand's job; this only frames. */
export function encodeCommand(cmd: Command): string {
  let body = `CMD,${field('cmdId', cmd.cmdId)},${field('verb', cmd.verb)}`;
  for (const arg of cmd.args) body += ',' + (typeof arg === 'number' ? formatDecimal(arg) : field('arg', arg));
  return frame(body);
}

/**
 * Device side (simulator): one received line. Bytes before the last `$` are dropped silently (the device
 * has nobody to report them to). Framing errors, a bad CRC or a non-CMD type are a Discard: the device
 * stays silent. A good frame with a bad cmd_id or verb is `malformed_command` (answer ACK ERR when
 * cmdId is known). Args stay the raw text fields; checkCommand parses numbers and checks arity.
 */
export function decodeCommandLine(line: string): CommandDecode {
  let end = line.length;
  if (end > 0 && line.charCodeAt(end - 1) === CR) end--;
  if (end > MAX_LINE_CHARS) return discard('too_long', line, `${end + 2} bytes with CR LF, limit ${MAX_FRAME_BYTES}`);
  const start = end === 0 ? -1 : line.lastIndexOf('$', end - 1);
  if (start < 0) return discard('leading_garbage', line.slice(0, end), `${end} bytes without '$'`);
  const star = unframe(line, start, end);
  if (typeof star !== 'number') return star;
  const fields = line.slice(start + 1, star).split(',');
  if (fields[0] !== 'CMD') return discard('unknown_type', line.slice(start, end), `${JSON.stringify(fields[0].slice(0, 16))} is not CMD`);
  const cmdId = fields[1];
  if (cmdId === undefined || !CMD_ID_RE.test(cmdId)) {
    return { type: 'malformed_command', cmdId: null, detail: 'cmd_id must be 1-8 characters of [A-Za-z0-9]' };
  }
  const verb = fields[2];
  if (verb === undefined || !VERBS.has(verb)) {
    return { type: 'malformed_command', cmdId, detail: `unknown verb ${JSON.stringify(verb ?? '')}` };
  }
  return { type: 'command', cmd: { cmdId, verb: verb as CommandVerb, args: fields.slice(3) } };
}

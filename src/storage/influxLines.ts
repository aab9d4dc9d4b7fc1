/**
 * Journal rows to InfluxDB line protocol, measurement by measurement (schema: docs/storage.md).
 *
 * Every line carries its own timestamp (device time for device data, gateway time for alarms) and
 * a fixed tag set, so re-sending a batch after a failed or unconfirmed write overwrites the same
 * points instead of adding new ones (idempotent writes).
 *
 * Timestamps are nanoseconds: the millisecond, then six digits from the row's own identity (the frame's
 * seq for device data, the journal id for alarms). InfluxDB keeps one point per series and timestamp, and
 * the ICD does not promise distinct device times: a coarse device clock gives many samples the same
 * millisecond, which at millisecond precision overwrote each other. The sub-millisecond part is derived,
 * never random, so a batch sent again still lands on the same points; read back at ms precision the
 * time is the device millisecond again. Field types are fixed here
 * (`seq` integer, channels float, whatever digits a value has), so no write meets a type conflict.
 *
 * Escaping is the `influx` client's (`escape.tag`, `escape.quoted`); the assembly is ours: the
 * client's writePoints() (schema coercion and ~40 regex escapes per line) cost 4× our whole
 * per-line budget in bench/storage.ts, and the drain must keep pace with InfluxDB itself.
 */
import { escape } from 'influx';
import type { Statement } from 'better-sqlite3';
import type { AlarmTransition } from '../alarms/types.js';
import type { Db } from './schema.js';
import type { Stream } from './types.js';

export const MEASUREMENT: Record<Stream, string> = {
  telemetry: 'telemetry',
  state: 'state',
  event: 'device_event',
  alarm: 'alarm',
};

/** Field and tag names of `telemetry` a channel key must not shadow (`time` InfluxDB rejects). */
const RESERVED = new Set(['seq', 'faults', 'time', 'device', 'session']);

/** The InfluxDB field of a channel: its ICD key (`QB`), or `ch_<key>` for a reserved name. */
export function channelField(key: string): string {
  return RESERVED.has(key) ? `ch_${key}` : key;
}

/** Line protocol has no newline inside a line: device text (MQTT `event.text`) could carry one. */
function oneLine(s: string): string {
  return /[\r\n]/.test(s) ? s.replace(/[\r\n]+/g, ' ') : s;
}

const str = (s: string) => escape.quoted(oneLine(s));
/** `t` (ms) and a row's identity as a nanosecond timestamp, built as text (it is beyond 2^53). */
export function nanos(t: number, identity: number): string {
  const ms = Number.isInteger(t) ? t : Math.round(t);
  return `${ms}${String(identity % 1_000_000).padStart(6, '0')}`;
}

/**
 * The hot path of a drain: the journal's JSON (written by JSON.stringify from numbers and nulls,
 * journalRows.ts) is turned into fields by scanning the text, without parsing it into objects and
 * formatting the numbers again. Anything unexpected (an escape, a value that is neither a number
 * nor null) returns null and the row takes the parsing path.
 */
export function scanFields(text: string, fieldPrefix: (key: string) => string): string | null {
  if (text.length < 3 || text.includes('\\')) return text === '{}' ? '' : null;
  let out = '';
  let faults: string | null = null;
  let i = 1;
  const end = text.length - 1;
  while (i < end) {
    if (text.charCodeAt(i) !== 34 /* " */) return null;
    const keyEnd = text.indexOf('"', i + 1);
    if (keyEnd < 0 || text.charCodeAt(keyEnd + 1) !== 58 /* : */) return null;
    const valueStart = keyEnd + 2;
    let valueEnd = text.indexOf(',', valueStart);
    if (valueEnd < 0) valueEnd = end;
    const c = text.charCodeAt(valueStart);
    if (c === 110 /* n */) {
      if (text.slice(valueStart, valueEnd) !== 'null') return null;
      const k = text.slice(i + 1, keyEnd);
      // A sensor fault (null) writes no field; `faults` names the faulted channels.
      if (k !== '') faults = faults === null ? k : `${faults},${k}`;
    } else if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
      if (keyEnd > i + 1) out += fieldPrefix(text.slice(i + 1, keyEnd)) + text.slice(valueStart, valueEnd);
    } else {
      return null;
    }
    i = valueEnd + 1;
  }
  return faults === null ? out : `${out},faults=${str(faults)}`;
}

/** The general path: parse the JSON; any value but a finite number is a fault. */
export function parseFields(text: string, fieldPrefix: (key: string) => string): string {
  let out = '';
  let faults: string | null = null;
  const v = JSON.parse(text) as Record<string, unknown>;
  for (const k in v) {
    if (k === '') continue; // no field key can be empty: the journal keeps it, InfluxDB cannot
    const x = v[k];
    // A float whatever its digits: `150` is written as 150, never as the integer 150i.
    if (typeof x === 'number' && Number.isFinite(x)) out += fieldPrefix(k) + String(x);
    else faults = faults === null ? k : `${faults},${k}`;
  }
  return faults === null ? out : `${out},faults=${str(faults)}`;
}

export interface LineBatch {
  /** Lines joined by `\n`, ready for POST /write?precision=ns. */
  body: string;
  lines: number;
  /** Id of the last row read (the cursor after a 2xx); unchanged when nothing was read. */
  lastId: number;
}

const SELECT: Record<Stream, string> = {
  telemetry: 'SELECT id, device, session, seq, t, v FROM telemetry WHERE id > ? ORDER BY id LIMIT ?',
  state: 'SELECT id, device, session, seq, t, state, previous FROM state WHERE id > ? ORDER BY id LIMIT ?',
  event: 'SELECT id, device, session, seq, t, code, prio, active, text FROM event WHERE id > ? ORDER BY id LIMIT ?',
  alarm: 'SELECT id, payload FROM alarm WHERE id > ? ORDER BY id LIMIT ?',
};

type Row = unknown[];

export class LineReader {
  private readonly statements = new WeakMap<Db, Map<string, Statement<unknown[]>>>();
  /** Escaped tag values and field keys: a handful of distinct strings, escaped once. */
  private readonly escaped = new Map<string, string>();
  private readonly prefixes = new Map<string, string>();
  private readonly fieldPrefixes = new Map<string, string>();

  /** Up to `limit` rows of one stream after `afterId`, as lines. */
  read(db: Db, stream: Stream, afterId: number, limit: number): LineBatch {
    const rows = this.stmt(db, SELECT[stream], true).all(afterId, limit) as Row[];
    let body = '';
    for (let i = 0; i < rows.length; i++) {
      const line = this.line(stream, rows[i]);
      body += i === 0 ? line : `\n${line}`;
    }
    return { body, lines: rows.length, lastId: rows.length > 0 ? (rows[rows.length - 1][0] as number) : afterId };
  }

  /** Last id of a stream and the gateway time of its first row after `afterId`: the backlog. */
  backlog(db: Db, stream: Stream, afterId: number): { maxId: number; firstAt: number | null } {
    const max = this.stmt(db, 'SELECT seq FROM sqlite_sequence WHERE name = ?').get(stream) as { seq: number } | undefined;
    const col = stream === 'alarm' ? 'at' : 'rx';
    const first = this.stmt(db, `SELECT ${col} AS at FROM ${stream} WHERE id > ? ORDER BY id LIMIT 1`).get(afterId) as
      | { at: number }
      | undefined;
    return { maxId: max?.seq ?? 0, firstAt: first?.at ?? null };
  }

  private line(stream: Stream, r: Row): string {
    switch (stream) {
      case 'telemetry':
        return this.telemetry(r[1] as string, r[2] as string | null, r[3] as number, r[4] as number, r[5] as string);
      case 'state':
        return `state${this.tagPair('device', r[1])} seq=${r[3]}i,state=${str(r[5] as string)}`
          + (r[6] === null ? '' : `,previous=${str(r[6] as string)}`)
          + (r[2] === null ? '' : `,session=${str(r[2] as string)}`)
          + ` ${nanos(r[4] as number, r[3] as number)}`;
      case 'event':
        return `device_event${this.tagPair('device', r[1])}${this.tagPair('code', r[5])}${this.tagPair('prio', r[6])}`
          + ` seq=${r[3]}i,active=${r[7] === 1},text=${str(r[8] as string)}`
          + (r[2] === null ? '' : `,session=${str(r[2] as string)}`)
          + ` ${nanos(r[4] as number, r[3] as number)}`;
      case 'alarm':
        return this.alarm(JSON.parse(r[1] as string) as AlarmTransition, r[0] as number);
    }
  }

  private telemetry(device: string, session: string | null, seq: number, t: number, values: string): string {
    const key = session === null ? device : `${device}\u0000${session}`;
    let prefix = this.prefixes.get(key);
    if (prefix === undefined) {
      prefix = `telemetry${this.tagPair('device', device)}${this.tagPair('session', session)} seq=`;
      this.prefixes.set(key, prefix);
    }
    const fields = scanFields(values, this.fieldPrefix) ?? parseFields(values, this.fieldPrefix);
    return `${prefix}${seq}i${fields} ${nanos(t, seq)}`;
  }

  /** `,QB=`: a channel's escaped field key with its separators, built once per key. */
  private readonly fieldPrefix = (key: string): string => {
    let p = this.fieldPrefixes.get(key);
    if (p === undefined) {
      p = `,${escape.tag(oneLine(channelField(key)))}=`;
      if (this.fieldPrefixes.size < 10_000) this.fieldPrefixes.set(key, p);
    }
    return p;
  };

  private alarm(a: AlarmTransition, id: number): string {
    const fields: string[] = [
      `alarm_id=${str(a.alarm.id)}`, `source=${str(a.alarm.source)}`, `priority=${str(a.alarm.priority)}`,
      `from=${str(a.from)}`, `to=${str(a.to)}`, `active=${a.alarm.active}`, `message=${str(a.alarm.message)}`,
    ];
    if (a.alarm.value !== null) fields.push(`value=${str(String(a.alarm.value))}`);
    if (a.alarm.limit !== null) fields.push(`limit=${str(String(a.alarm.limit))}`);
    if (a.actor) fields.push(`actor=${str(`${a.actor.user} (${a.actor.role})`)}`);
    if (a.reason !== null) fields.push(`reason=${str(a.reason)}`);
    if (a.alarm.sessionId !== null) fields.push(`session=${str(a.alarm.sessionId)}`);
    return `alarm${this.tagPair('device', a.alarm.device)}${this.tagPair('rule', a.alarm.rule)}${this.tagPair('kind', a.kind)}`
      + ` ${fields.join(',')} ${nanos(a.at, id)}`;
  }

  /** `,name=value`, or nothing: line protocol has no empty tag value (an absent session is an absent tag). */
  private tagPair(name: string, value: unknown): string {
    return typeof value === 'string' && value !== '' ? `,${name}=${this.tag(value)}` : '';
  }

  /** A tag value or field key, escaped by the client once and remembered. */
  private tag(s: string): string {
    let e = this.escaped.get(s);
    if (e === undefined) {
      e = escape.tag(oneLine(s));
      if (this.escaped.size < 10_000) this.escaped.set(s, e);
    }
    return e;
  }

  private stmt(db: Db, sql: string, raw = false): Statement<unknown[]> {
    let cache = this.statements.get(db);
    if (!cache) this.statements.set(db, (cache = new Map()));
    const key = raw ? `raw:${sql}` : sql;
    let s = cache.get(key);
    if (!s) cache.set(key, (s = raw ? db.prepare(sql).raw(true) : db.prepare(sql)));
    return s;
  }
}

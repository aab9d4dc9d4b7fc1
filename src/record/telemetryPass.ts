/**
 * One pass over a session's telemetry for the perfusion record: per-channel statistics and TR band time
 * (ChannelAccumulator, the session summary's own code), trend buckets (TrendAccumulator) and, in the usual case,
 * frame completeness (SeqCompleteness), from a single read of the rows in (t, seq) order.
 *
 * Why not SQL: json_extract parses the stored JSON again at every call, so min/mean/max of 11 channels per
 * bucket in SQL cost several times a read of every row here (docs/engineer.md, "Perfusion record").
 * Why not JSON.parse per row: building an object per sample (2.16 million for a day at 25 Hz) cost more than the
 * read itself; the values are scanned from the stored text instead (`ValueScanner`), which falls back to
 * JSON.parse for any text not in the compact form the journal writes, so both give the same numbers.
 *
 * Completeness counts frames in arrival order, (rx, seq), across telemetry, states and events (SessionReader.
 * completeness). When the telemetry's (t, seq) order is also its (rx, seq) order (frames arrived in the order the
 * console sent them: the normal case), the few state and event frames are merged in and the answer is the same
 * without sorting the whole session; otherwise the reader's sorted query is used.
 */
import { deviceRange, type SessionReader } from '../sessions/reader.js';
import { ChannelAccumulator, SeqCompleteness, type ChannelSlot } from '../sessions/summary.js';
import type { SessionRecord, SessionSummary } from '../sessions/types.js';
import * as q from '../storage/journalQueries.js';
import type { Db } from '../storage/schema.js';
import { TREND_CHARTS, type RecordTrends, type TrendSeries } from './types.js';

/** Channels charted by TREND_CHARTS, in chart order, each once. */
export const TREND_CHANNELS: readonly string[] = [...new Set(TREND_CHARTS.flatMap((c) => c.channels))];

const PAGE_ROWS = 5_000;
const nextTurn = () => new Promise((r) => setImmediate(r));

/** 10^k as doubles, all exact: m / 10^k is then correctly rounded, the same double JSON.parse gives. */
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);
/** Digits an integer mantissa may have and stay exact in a double (< 2^53). */
const MAX_DIGITS = 15;

export interface ChannelEntry {
  key: string;
  slot: ChannelSlot;
  /** Index in the trend accumulator's channels, or -1. */
  trend: number;
  /** 1 for TR, 2 for STR (the band), else 0. */
  band: number;
}

/**
 * Reads `{"KEY":number|null,...}` (the journal's JSON.stringify of ChannelValues) without building an object:
 * `scan` fills `entries` and `values` (reused) and returns the count, or -1 when the text is not in that form
 * (escapes, spaces, other value types): the caller then uses JSON.parse.
 */
export class ValueScanner {
  readonly entries: ChannelEntry[] = [];
  readonly values: Array<number | null> = [];
  /** The keys of the previous text by position: consoles send the same keys in the same order. */
  private readonly layout: ChannelEntry[] = [];

  constructor(private readonly entry: (key: string) => ChannelEntry) {}

  scan(s: string): number {
    const n = s.length;
    if (n < 2 || s.charCodeAt(0) !== 123 /* { */) return -1;
    if (n === 2) return s.charCodeAt(1) === 125 ? 0 : -1;
    let i = 1;
    let k = 0;
    for (;;) {
      if (s.charCodeAt(i) !== 34 /* " */) return -1;
      const ks = i + 1;
      const ke = s.indexOf('"', ks);
      if (ke < 0 || s.charCodeAt(ke + 1) !== 58 /* : */) return -1;
      let e = this.layout[k];
      if (e === undefined || ke - ks !== e.key.length || !s.startsWith(e.key, ks)) {
        const key = s.slice(ks, ke);
        if (key.includes('\\')) return -1;
        e = this.entry(key);
        this.layout[k] = e;
      }
      i = ke + 2;
      let c = s.charCodeAt(i);
      let x: number | null;
      if (c === 110 /* n */) {
        if (!s.startsWith('null', i)) return -1;
        x = null;
        i += 4;
      } else {
        const start = i;
        const neg = c === 45; /* - */
        if (neg) c = s.charCodeAt(++i);
        if (!(c >= 48 && c <= 57)) return -1;
        let m = 0;
        let digits = 0;
        let frac = 0;
        let dot = false;
        let slow = false;
        for (;;) {
          if (c >= 48 && c <= 57) {
            m = m * 10 + (c - 48);
            digits++;
            if (dot) frac++;
          } else if (c === 46 /* . */ && !dot) {
            dot = true;
          } else if (c === 101 || c === 69 || c === 43 || c === 45 || c === 46) { /* e E + - . */
            slow = true;
          } else {
            break;
          }
          c = s.charCodeAt(++i);
        }
        if (slow || digits > MAX_DIGITS) {
          x = Number(s.slice(start, i));
          if (Number.isNaN(x)) return -1;
        } else {
          x = frac === 0 ? m : m / POW10[frac];
          if (neg) x = -x;
        }
      }
      this.entries[k] = e;
      this.values[k] = x;
      k++;
      const sep = s.charCodeAt(i);
      if (sep === 125 /* } */) return i === n - 1 ? k : -1;
      if (sep !== 44 /* , */) return -1;
      i++;
    }
  }
}

/**
 * Min / mean / max per bucket of the trend channels, fed in device-time order. A bucket exists once any sample
 * falls in it; a channel's value there is null when the bucket had no valid reading of it (absent: not measured;
 * null: a sensor fault, ICD §1). Only channels that appear in the session get a series.
 */
export class TrendAccumulator {
  readonly channels: readonly string[];
  private readonly t: number[] = [];
  private readonly out: TrendSeries[];
  private readonly seen: boolean[];
  private bucket: number | null = null;
  private min: Float64Array;
  private max: Float64Array;
  private sum: Float64Array;
  private n: Float64Array;

  constructor(private readonly bucketMs: number, channels: readonly string[] = TREND_CHANNELS) {
    this.channels = channels;
    this.out = channels.map(() => ({ min: [], mean: [], max: [] }));
    this.seen = channels.map(() => false);
    const c = channels.length;
    this.min = new Float64Array(c).fill(Infinity);
    this.max = new Float64Array(c).fill(-Infinity);
    this.sum = new Float64Array(c);
    this.n = new Float64Array(c);
  }

  /** Starts a sample at device time t (closing the previous bucket when t is past it). */
  sample(t: number): void {
    const b = t - (((t % this.bucketMs) + this.bucketMs) % this.bucketMs);
    if (b !== this.bucket) {
      this.close();
      this.bucket = b;
    }
  }

  /** A value of trend channel `i` in the current sample (null: a fault). */
  value(i: number, x: number | null): void {
    this.seen[i] = true;
    if (x === null || !Number.isFinite(x)) return;
    if (x < this.min[i]) this.min[i] = x;
    if (x > this.max[i]) this.max[i] = x;
    this.sum[i] += x;
    this.n[i] += 1;
  }

  result(): RecordTrends {
    this.close();
    const series: Record<string, TrendSeries> = {};
    this.channels.forEach((key, i) => {
      if (this.seen[i]) series[key] = this.out[i];
    });
    return { bucketMs: this.bucketMs, t: this.t, series };
  }

  private close(): void {
    if (this.bucket === null) return;
    this.t.push(this.bucket);
    for (let i = 0; i < this.channels.length; i++) {
      const s = this.out[i];
      const has = this.n[i] > 0;
      s.min.push(has ? this.min[i] : null);
      s.mean.push(has ? Math.round((this.sum[i] / this.n[i]) * 1e4) / 1e4 : null);
      s.max.push(has ? this.max[i] : null);
    }
    this.min.fill(Infinity);
    this.max.fill(-Infinity);
    this.sum.fill(0);
    this.n.fill(0);
    this.bucket = null;
  }
}

export interface TelemetryPassResult {
  channels: ReturnType<ChannelAccumulator['result']>;
  trends: RecordTrends;
  completeness: SessionSummary['completeness'];
}

/** Reads the session's telemetry once (page by page, yielding between pages) and returns what the record needs. */
export async function telemetryPass(db: () => Db, reader: SessionReader, rec: SessionRecord, now: number, bucketMs: number): Promise<TelemetryPassResult> {
  const range = deviceRange(rec, now);
  const channels = new ChannelAccumulator();
  const trends = new TrendAccumulator(bucketMs);
  const trendIndex = new Map(trends.channels.map((c, i) => [c, i]));
  const byKey = new Map<string, ChannelEntry>();
  const entry = (key: string): ChannelEntry => {
    let e = byKey.get(key);
    if (!e) byKey.set(key, (e = { key, slot: channels.slot(key), trend: trendIndex.get(key) ?? -1, band: key === 'TR' ? 1 : key === 'STR' ? 2 : 0 }));
    return e;
  };
  const scanner = new ValueScanner(entry);
  const { entries, values } = scanner;

  // State and event frames in arrival order, merged into the telemetry's while that stays in arrival order too.
  const others = db().prepare(`SELECT seq, t, rx FROM (
      SELECT seq, t, rx FROM state WHERE device = @device AND t >= @from AND t < @to
      UNION ALL SELECT seq, t, rx FROM event WHERE device = @device AND t >= @from AND t < @to)
    ORDER BY rx, seq`).raw(true).all({ device: rec.device, ...range }) as Array<[number, number, number]>;
  let next = 0;
  let seqs: SeqCompleteness | null = new SeqCompleteness();
  let lastRx = -Infinity;
  let lastSeq = -Infinity;

  let after: q.TelemetryKey | null = null;
  for (;;) {
    const page = q.telemetryTextPage(db(), rec.device, range, after, PAGE_ROWS);
    for (const [t, seq, rx, text] of page) {
      if (seqs) {
        if (rx < lastRx || (rx === lastRx && seq < lastSeq)) {
          seqs = null; // arrived out of device-time order: count from the sorted query below
        } else {
          while (next < others.length && (others[next][2] < rx || (others[next][2] === rx && others[next][0] <= seq))) {
            seqs.add(others[next][0], others[next][1]);
            next++;
          }
          seqs.add(seq, t);
          lastRx = rx;
          lastSeq = seq;
        }
      }
      trends.sample(t);
      let tr: number | null | undefined;
      let str: number | null | undefined;
      const count = scanner.scan(text);
      if (count >= 0) {
        for (let k = 0; k < count; k++) {
          const e = entries[k];
          const x = values[k];
          e.slot.push(x);
          if (e.trend >= 0) trends.value(e.trend, x);
          if (e.band === 1) tr = x;
          else if (e.band === 2) str = x;
        }
      } else {
        const v = JSON.parse(text) as Record<string, number | null>;
        for (const key in v) {
          const e = entry(key);
          const x = v[key];
          e.slot.push(x);
          if (e.trend >= 0) trends.value(e.trend, typeof x === 'number' ? x : null);
        }
        if ('TR' in v) tr = v.TR;
        str = v.STR;
      }
      channels.endSample(t, tr, str);
    }
    if (page.length < PAGE_ROWS) break;
    const last = page[page.length - 1];
    after = { t: last[0], seq: last[1] };
    await nextTurn();
  }
  if (seqs) {
    for (; next < others.length; next++) seqs.add(others[next][0], others[next][1]);
  }
  return {
    channels: channels.result(),
    trends: trends.result(),
    completeness: seqs ? seqs.result() : reader.completeness(rec, now),
  };
}

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
 *
 * Resumable (`TelemetryPassState`): everything the pass has accumulated after the rows up to a key (t, seq) can be
 * saved as JSON and restored exactly (doubles round-trip through JSON; -0 and the infinities are written as strings,
 * src/util/exactJson.ts), so the pass over a session done in chunks, with saves and restores between them, gives the
 * same numbers, hence the same record and hash, as one pass. checkpoint.ts keeps such a state for every running
 * session in the journal, so that when it ends only the rows after it are read.
 *
 * Trend buckets: their width depends on the session's length, unknown while it runs. The means are therefore always
 * computed the same way, whichever path (one pass, or chunks while running): samples are summed per 1 s bucket, and
 * the 1 s sums folded, in time order, through the widths of TREND_FOLD_MS (each divides the next) up to the chart's
 * width. Min and max are exact whatever the order; the count-weighted mean is the fold of sums over the fold of
 * counts, one fixed order of additions, so the same rows always give the same doubles. A running session keeps its
 * closed buckets at the widest fold width that divides every chart width it can still end with (at most ~3,000).
 */
import { deviceRange, type SessionReader } from '../sessions/reader.js';
import {
  ChannelAccumulator, SeqCompleteness, type ChannelSlot, type SavedChannels, type SavedSeqs,
} from '../sessions/summary.js';
import type { SessionRecord, SessionSummary } from '../sessions/types.js';
import type { Db } from '../storage/schema.js';
import { dec, decAll, enc, encAll, type ExactNumber } from '../util/exactJson.js';
import { TREND_CHARTS, type RecordTrends, type TrendSeries } from './types.js';

/** Most points a trend chart gets. */
export const TREND_MAX_BUCKETS = 1_500;
/** Round bucket widths, ms, smallest first; the smallest that keeps a chart within TREND_MAX_BUCKETS is used. */
export const TREND_BUCKET_STEPS_MS: readonly number[] = [
  1_000, 2_000, 5_000, 10_000, 15_000, 30_000,
  60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
  3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/** Bucket width for device times [from, to]: buckets are aligned to the epoch (as history queries are). */
export function trendBucketMs(from: number, to: number): number {
  for (const b of TREND_BUCKET_STEPS_MS) {
    if (Math.floor(to / b) - Math.floor(from / b) + 1 <= TREND_MAX_BUCKETS) return b;
  }
  return TREND_BUCKET_STEPS_MS[TREND_BUCKET_STEPS_MS.length - 1];
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
/** The widest width dividing `w` and every larger chart width: a session charted at `w` may still end at any of those. */
const foldBase = (w: number): number => TREND_BUCKET_STEPS_MS.filter((s) => s >= w).reduce(gcd);
/**
 * Widths trend buckets are folded through, narrowest first, each dividing the next (1 s, 5 s, 15 s, 30 s, 1 min,
 * 5 min, ...): the fold bases of the chart widths.
 */
export const TREND_FOLD_MS: readonly number[] = [...new Set(TREND_BUCKET_STEPS_MS.map(foldBase))].sort((a, b) => a - b);
for (let k = 1; k < TREND_FOLD_MS.length; k++) {
  if (TREND_FOLD_MS[k] % TREND_FOLD_MS[k - 1] !== 0) throw new Error('trend fold widths must divide each other');
}
/** The fold level whose buckets make up a chart of width w (and of any width a longer session may get). */
export const foldLevel = (w: number): number => TREND_FOLD_MS.indexOf(foldBase(w));

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

/** One bucket of the trend channels: min, max, sum and count of valid values per channel. */
interface Bucket {
  start: number;
  // Plain arrays, not Float64Array: a bucket a second is made, and typed arrays this size live outside the V8 heap
  // (malloc), which made the gateway's RSS grow by the hundred MB over a day's pass.
  min: number[];
  max: number[];
  sum: number[];
  n: number[];
}

type SavedBucket = [number, ExactNumber[], ExactNumber[], ExactNumber[], number[]];

export interface SavedTrends {
  channels: string[];
  seen: boolean[];
  top: number;
  open: Array<SavedBucket | null>;
  closed: SavedBucket[];
}

const floorTo = (t: number, w: number) => t - (((t % w) + w) % w);

/**
 * Min / mean / max per bucket of the trend channels, fed in device-time order. A bucket exists once any sample
 * falls in it; a channel's value there is null when the bucket had no valid reading of it (absent: not measured;
 * null: a sensor fault, ICD §1). Only channels that appear in the session get a series.
 *
 * Samples go into 1 s buckets; a bucket, when the next sample is past it, is folded into the open bucket of the
 * next width of TREND_FOLD_MS, and so on up to the level `top`, whose buckets are kept (`closed`). `result(w)`
 * folds the kept buckets on to the chart's width w. Folding adds sums and counts in time order starting from 0, so
 * the same rows give the same doubles whenever the folds happen (module comment).
 */
/** Spare buckets a TrendAccumulator keeps for reuse. */
const SPARE_BUCKETS = 64;

export class TrendAccumulator {
  readonly channels: readonly string[];
  private readonly seen: boolean[];
  private top = 0;
  private open: Array<Bucket | null> = [null];
  private closed: Bucket[] = [];
  private cur: Bucket | null = null;
  private readonly spare: Bucket[] = [];

  constructor(channels: readonly string[] = TREND_CHANNELS) {
    this.channels = channels;
    this.seen = channels.map(() => false);
  }

  /** The fold level of the kept buckets (TREND_FOLD_MS). */
  get level(): number {
    return this.top;
  }

  /** Kept buckets (bounded by `coarsen`). */
  get kept(): number {
    return this.closed.length;
  }

  /** Starts a sample at device time t (closing the previous 1 s bucket when t is past it). */
  sample(t: number): void {
    const b = floorTo(t, TREND_FOLD_MS[0]);
    let o = this.open[0];
    if (o && o.start !== b) {
      this.close(0);
      o = null;
    }
    if (!o) this.open[0] = o = this.bucket(b);
    this.cur = o;
  }

  /** A value of trend channel `i` in the current sample (null: a fault). */
  value(i: number, x: number | null): void {
    this.seen[i] = true;
    if (x === null || !Number.isFinite(x)) return;
    const c = this.cur!;
    if (x < c.min[i]) c.min[i] = x;
    if (x > c.max[i]) c.max[i] = x;
    c.sum[i] += x;
    c.n[i] += 1;
  }

  /** Keeps buckets of fold level `level` (or wider) from now on: fewer of them; the numbers do not change. */
  coarsen(level: number): void {
    while (this.top < level && this.top + 1 < TREND_FOLD_MS.length) {
      const w = TREND_FOLD_MS[this.top + 1];
      const wider: Bucket[] = [];
      for (const x of this.closed) {
        const s = floorTo(x.start, w);
        let p = wider[wider.length - 1];
        if (!p || p.start !== s) wider.push((p = this.bucket(s)));
        this.fold(p, x);
        this.recycle(x);
      }
      // The last wider bucket stays open when data still pending (in the open narrower buckets) falls in it.
      let pending = Infinity;
      for (const o of this.open) if (o && o.start < pending) pending = o.start;
      const last = wider[wider.length - 1];
      this.open.push(last && Number.isFinite(pending) && floorTo(pending, w) === last.start ? wider.pop()! : null);
      this.closed = wider;
      this.top += 1;
    }
  }

  /** The trend series at bucket width `bucketMs` (one of TREND_BUCKET_STEPS_MS); the accumulator is used up. */
  result(bucketMs: number): RecordTrends {
    for (let k = 0; k <= this.top; k++) if (this.open[k]) this.close(k);
    const level = foldLevel(bucketMs);
    if (level < 0 || this.top > level) throw new Error(`trend buckets kept at ${TREND_FOLD_MS[this.top]} ms cannot make ${bucketMs} ms`);
    this.coarsen(level);
    const t: number[] = [];
    const out: TrendSeries[] = this.channels.map(() => ({ min: [], mean: [], max: [] }));
    let p: Bucket | null = null;
    const emit = (b: Bucket) => {
      t.push(b.start);
      for (let i = 0; i < this.channels.length; i++) {
        const has = b.n[i] > 0;
        out[i].min.push(has ? b.min[i] : null);
        out[i].mean.push(has ? Math.round((b.sum[i] / b.n[i]) * 1e4) / 1e4 : null);
        out[i].max.push(has ? b.max[i] : null);
      }
    };
    for (const x of this.closed) {
      const s = floorTo(x.start, bucketMs);
      if (p && p.start !== s) emit(p);
      if (!p || p.start !== s) p = this.bucket(s);
      this.fold(p, x);
    }
    if (p) emit(p);
    const series: Record<string, TrendSeries> = {};
    this.channels.forEach((key, i) => {
      if (this.seen[i]) series[key] = out[i];
    });
    return { bucketMs, t, series };
  }

  save(): SavedTrends {
    const b = (x: Bucket): SavedBucket => [x.start, encAll(x.min), encAll(x.max), encAll(x.sum), Array.from(x.n)];
    return {
      channels: [...this.channels], seen: [...this.seen], top: this.top,
      open: this.open.map((o) => (o ? b(o) : null)), closed: this.closed.map(b),
    };
  }

  static restore(saved: SavedTrends): TrendAccumulator {
    const a = new TrendAccumulator(saved.channels);
    const b = (x: SavedBucket): Bucket => ({
      start: x[0], min: decAll(x[1]), max: decAll(x[2]), sum: decAll(x[3]), n: x[4].map(Number),
    });
    saved.seen.forEach((v, i) => { a.seen[i] = v; });
    a.top = saved.top;
    a.open = saved.open.map((o) => (o ? b(o) : null));
    a.closed = saved.closed.map(b);
    a.cur = a.open[0];
    return a;
  }

  /**
   * A new bucket: a spare one reset when there is one. A pass makes ~100,000 buckets a day of which ~1,500 are kept;
   * allocating each made V8 pretenure them all (the site's objects are seen to survive, as the kept ones do), and
   * the short-lived ones then filled the old generation: ~70 MB of garbage per day passed, in the gateway's RSS.
   */
  private bucket(start: number): Bucket {
    const spare = this.spare.pop();
    if (spare) {
      spare.start = start;
      spare.min.fill(Infinity);
      spare.max.fill(-Infinity);
      spare.sum.fill(0);
      spare.n.fill(0);
      return spare;
    }
    const c = this.channels.length;
    return {
      start, min: new Array<number>(c).fill(Infinity), max: new Array<number>(c).fill(-Infinity),
      sum: new Array<number>(c).fill(0), n: new Array<number>(c).fill(0),
    };
  }

  /** A bucket folded into another and no longer referenced, kept for reuse. */
  private recycle(b: Bucket): void {
    if (this.spare.length < SPARE_BUCKETS) this.spare.push(b);
  }

  private fold(into: Bucket, x: Bucket): void {
    for (let i = 0; i < this.channels.length; i++) {
      if (x.min[i] < into.min[i]) into.min[i] = x.min[i];
      if (x.max[i] > into.max[i]) into.max[i] = x.max[i];
      into.sum[i] += x.sum[i];
      into.n[i] += x.n[i];
    }
  }

  /** Closes the open bucket of `level` into the next level's (or the kept list at the top). */
  private close(level: number): void {
    const x = this.open[level];
    if (!x) return;
    this.open[level] = null;
    if (level >= this.top) {
      this.closed.push(x);
      return;
    }
    const s = floorTo(x.start, TREND_FOLD_MS[level + 1]);
    let p = this.open[level + 1];
    if (p && p.start !== s) {
      this.close(level + 1);
      p = null;
    }
    if (!p) this.open[level + 1] = p = this.bucket(s);
    this.fold(p, x);
    this.recycle(x);
  }
}

export interface TelemetryPassResult {
  channels: ReturnType<ChannelAccumulator['result']>;
  trends: RecordTrends;
  completeness: SessionSummary['completeness'];
}

/** A telemetry row's place in the pass: (t, seq), the journal's order. */
export interface PassKey {
  t: number;
  seq: number;
}

/** Count and largest id of rows of one table. */
export interface RowMark {
  n: number;
  maxId: number | null;
}

/** Bumped when what the pass computes or saves changes: an older saved state is then not used. */
export const PASS_FORMAT = 1;

/** TelemetryPassState.save(): JSON, restored exactly. */
export interface SavedPass {
  format: number;
  device: string;
  from: number;
  /** The last telemetry row passed, or null (none yet). */
  key: PassKey | null;
  /** Rows passed: telemetry up to `key`; states and events merged into the completeness count. */
  telemetry: RowMark;
  state: RowMark;
  event: RowMark;
  /** (rx, seq) of the last telemetry row counted for completeness: states and events up to it were merged in. */
  last: { rx: ExactNumber; seq: ExactNumber };
  /** Largest device time of a state or event merged in, or null. */
  otherMaxT: number | null;
  channels: SavedChannels;
  trends: SavedTrends;
  seqs: SavedSeqs | null;
}

const emptyMark = (): RowMark => ({ n: 0, maxId: null });
const mark = (m: RowMark, id: number) => {
  m.n += 1;
  if (m.maxId === null || id > m.maxId) m.maxId = id;
};

export interface AdvanceOptions {
  /** Device time, exclusive, the session's rows end at (a running session: Infinity). */
  to: number;
  /** Stop before the first row received at or after this gateway time (a running session: rows still arriving). */
  rxBefore?: number;
  /** Stop after about this many rows (at a page boundary). */
  maxRows?: number;
  /** Rows per page (PAGE_ROWS); the pass yields between pages. */
  pageRows?: number;
  /** Asked between pages: true stops the advance there (a gateway shutting down). */
  shouldStop?: () => boolean;
  /**
   * A running session's start: after each page the kept trend buckets are folded to the widest base the session can
   * still be charted with (trendBucketMs from its start to the last row passed), which bounds them; the numbers do
   * not change.
   */
  runningSince?: number;
}

/**
 * The telemetry pass of one session, resumable: `advance` reads the next rows (page by page, yielding between
 * pages), `save` / `restore` keep the state between advances, `finish` gives the result.
 */
export class TelemetryPassState {
  readonly channels: ChannelAccumulator;
  readonly trends: TrendAccumulator;
  private seqs: SeqCompleteness | null;
  key: PassKey | null;
  readonly telemetry: RowMark;
  readonly state: RowMark;
  readonly event: RowMark;
  private lastRx: number;
  private lastSeq: number;
  otherMaxT: number | null;
  private readonly byKey = new Map<string, ChannelEntry>();
  private readonly trendIndex: Map<string, number>;

  private constructor(readonly device: string, readonly from: number, saved: SavedPass | null) {
    this.channels = saved ? ChannelAccumulator.restore(saved.channels) : new ChannelAccumulator();
    this.trends = saved ? TrendAccumulator.restore(saved.trends) : new TrendAccumulator();
    this.seqs = saved ? (saved.seqs && SeqCompleteness.restore(saved.seqs)) : new SeqCompleteness();
    this.key = saved?.key ? { t: saved.key.t, seq: saved.key.seq } : null;
    this.telemetry = saved ? { ...saved.telemetry } : emptyMark();
    this.state = saved ? { ...saved.state } : emptyMark();
    this.event = saved ? { ...saved.event } : emptyMark();
    this.lastRx = saved ? dec(saved.last.rx) : -Infinity;
    this.lastSeq = saved ? dec(saved.last.seq) : -Infinity;
    this.otherMaxT = saved ? saved.otherMaxT : null;
    this.trendIndex = new Map(this.trends.channels.map((c, i) => [c, i]));
  }

  static fresh(device: string, from: number): TelemetryPassState {
    return new TelemetryPassState(device, from, null);
  }

  /** A saved state, or null when it is not one this code can go on with. */
  static restore(saved: SavedPass): TelemetryPassState | null {
    if (saved.format !== PASS_FORMAT || saved.trends.channels.join() !== TREND_CHANNELS.join()) return null;
    return new TelemetryPassState(saved.device, saved.from, saved);
  }

  /** Whether completeness is still counted in the pass (frames arrived in order so far). */
  get inOrder(): boolean {
    return this.seqs !== null;
  }

  /** (rx, seq) of the last telemetry row counted for completeness: states and events up to it are merged in. */
  get lastArrival(): { rx: number; seq: number } {
    return { rx: this.lastRx, seq: this.lastSeq };
  }

  save(): SavedPass {
    return {
      format: PASS_FORMAT, device: this.device, from: this.from, key: this.key && { ...this.key },
      telemetry: { ...this.telemetry }, state: { ...this.state }, event: { ...this.event },
      last: { rx: enc(this.lastRx), seq: enc(this.lastSeq) }, otherMaxT: this.otherMaxT,
      channels: this.channels.save(), trends: this.trends.save(), seqs: this.seqs && this.seqs.save(),
    };
  }

  /** States and events not yet merged in, in arrival order: [table (0 state, 1 event), id, seq, t, rx]. */
  private others(db: Db, to: number, rxBefore: number | undefined): Array<[number, number, number, number, number]> {
    const cond = `device = @device AND t >= @from AND t < @to AND (rx, seq) > (@rx, @seq)${rxBefore === undefined ? '' : ' AND rx < @rxBefore'}`;
    return db.prepare(`SELECT k, id, seq, t, rx FROM (
        SELECT 0 AS k, id, seq, t, rx FROM state WHERE ${cond}
        UNION ALL SELECT 1 AS k, id, seq, t, rx FROM event WHERE ${cond})
      ORDER BY rx, seq`).raw(true).all({
      device: this.device, from: this.from, to: Number.isFinite(to) ? to : Number.MAX_SAFE_INTEGER,
      rx: Number.isFinite(this.lastRx) ? this.lastRx : -Number.MAX_SAFE_INTEGER,
      seq: Number.isFinite(this.lastSeq) ? this.lastSeq : -Number.MAX_SAFE_INTEGER,
      ...(rxBefore === undefined ? {} : { rxBefore }),
    }) as Array<[number, number, number, number, number]>;
  }

  private mergeOther(o: [number, number, number, number, number]): void {
    this.seqs!.add(o[2], o[3]);
    mark(o[0] === 0 ? this.state : this.event, o[1]);
    if (this.otherMaxT === null || o[3] > this.otherMaxT) this.otherMaxT = o[3];
  }

  private entry = (key: string): ChannelEntry => {
    let e = this.byKey.get(key);
    if (!e) {
      this.byKey.set(key, (e = {
        key, slot: this.channels.slot(key), trend: this.trendIndex.get(key) ?? -1, band: key === 'TR' ? 1 : key === 'STR' ? 2 : 0,
      }));
    }
    return e;
  };

  /** Reads the rows after `key`; returns how many, and whether it reached the end (of the rows there are now). */
  async advance(db: () => Db, opts: AdvanceOptions): Promise<{ rows: number; done: boolean }> {
    const to = Number.isFinite(opts.to) ? opts.to : Number.MAX_SAFE_INTEGER;
    const others = this.seqs ? this.others(db(), to, opts.rxBefore) : [];
    let next = 0;
    const scanner = new ValueScanner(this.entry);
    const { entries, values } = scanner;
    const channels = this.channels;
    const trends = this.trends;
    let rows = 0;
    let lastT = 0;
    let lastSeq = 0;
    const limit = opts.pageRows ?? PAGE_ROWS;
    for (;;) {
      const k = this.key;
      const page = (k
        ? db().prepare(`SELECT id, t, seq, rx, v FROM telemetry WHERE device = ? AND t >= ? AND t < ? AND (t, seq) > (?, ?)
            ORDER BY t, seq LIMIT ?`).raw(true).iterate(this.device, Math.max(this.from, k.t), to, k.t, k.seq, limit)
        : db().prepare('SELECT id, t, seq, rx, v FROM telemetry WHERE device = ? AND t >= ? AND t < ? ORDER BY t, seq LIMIT ?')
          .raw(true).iterate(this.device, this.from, to, limit)) as IterableIterator<[number, number, number, number, string]>;
      // Row by row, not the page as an array: each row then dies young, where a page of rows held through the
      // garbage collector's young-generation passes was promoted and grew the old generation (and the RSS).
      let inPage = 0;
      for (const [id, t, seq, rx, text] of page) {
        if (opts.rxBefore !== undefined && rx >= opts.rxBefore) {
          if (inPage > 0) this.key = { t: lastT, seq: lastSeq };
          return { rows, done: true };
        }
        const seqs = this.seqs;
        if (seqs) {
          if (rx < this.lastRx || (rx === this.lastRx && seq < this.lastSeq)) {
            this.seqs = null; // arrived out of device-time order: count from the sorted query at the end
          } else {
            while (next < others.length && (others[next][4] < rx || (others[next][4] === rx && others[next][2] <= seq))) {
              this.mergeOther(others[next]);
              next++;
            }
            seqs.add(seq, t);
            this.lastRx = rx;
            this.lastSeq = seq;
          }
        }
        trends.sample(t);
        let tr: number | null | undefined;
        let str: number | null | undefined;
        const count = scanner.scan(text);
        if (count >= 0) {
          for (let j = 0; j < count; j++) {
            const e = entries[j];
            const x = values[j];
            e.slot.push(x);
            if (e.trend >= 0) trends.value(e.trend, x);
            if (e.band === 1) tr = x;
            else if (e.band === 2) str = x;
          }
        } else {
          const v = JSON.parse(text) as Record<string, number | null>;
          for (const key in v) {
            const e = this.entry(key);
            const x = v[key];
            e.slot.push(x);
            if (e.trend >= 0) trends.value(e.trend, typeof x === 'number' ? x : null);
          }
          if ('TR' in v) tr = v.TR;
          str = v.STR;
        }
        channels.endSample(t, tr, str);
        lastT = t;
        lastSeq = seq;
        mark(this.telemetry, id);
        rows++;
        inPage++;
      }
      if (inPage > 0) this.key = { t: lastT, seq: lastSeq };
      if (opts.runningSince !== undefined && this.key) {
        this.trends.coarsen(foldLevel(trendBucketMs(opts.runningSince, Math.max(opts.runningSince, this.key.t))));
      }
      if (inPage < limit) return { rows, done: true };
      if (opts.maxRows !== undefined && rows >= opts.maxRows) return { rows, done: false };
      await nextTurn();
      if (opts.shouldStop?.()) return { rows, done: false };
    }
  }

  /** The pass's result for the session's range; the state is used up. */
  finish(db: () => Db, reader: SessionReader, rec: SessionRecord, now: number, bucketMs: number): TelemetryPassResult {
    const range = deviceRange(rec, now);
    if (this.seqs) {
      for (const o of this.others(db(), range.to, undefined)) this.mergeOther(o);
    }
    return {
      channels: this.channels.result(),
      trends: this.trends.result(bucketMs),
      completeness: this.seqs ? this.seqs.result() : reader.completeness(rec, now),
    };
  }
}

/** Reads the session's telemetry once (page by page, yielding between pages) and returns what the record needs. */
export async function telemetryPass(db: () => Db, reader: SessionReader, rec: SessionRecord, now: number, bucketMs: number): Promise<TelemetryPassResult> {
  const range = deviceRange(rec, now);
  const pass = TelemetryPassState.fresh(rec.device, range.from);
  pass.trends.coarsen(foldLevel(bucketMs));
  await pass.advance(db, { to: range.to });
  return pass.finish(db, reader, rec, now, bucketMs);
}

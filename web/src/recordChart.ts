/**
 * The perfusion record's trend charts as SVG (vector: they print and zoom sharp): per bucket the min–max
 * envelope shaded and the mean as a line, setpoints dashed, the STR ± 0.5 °C band, the session's states as
 * coloured bands behind, and alarm raises as markers. Drawn once from the record; nothing here is live.
 */
import type { PerfusionRecord, RecordTrends } from '../../src/record/types.js';
import { h } from './dom.js';
import { zoned } from './recordTime.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 1000;
const H = 230;
const M = { left: 58, right: 12, top: 10, bottom: 26 };
/** Channels that are setpoints: drawn as a dashed line of their mean, no envelope. */
const SETPOINTS = new Set(['SQB', 'STR', 'SHEP', 'SQP']);
const COLOURS = ['#4fc3f7', '#ffb74d', '#ce93d8', '#aed581'];
const SETPOINT_COLOUR = '#ffffff';
export const STATE_COLOURS: Record<string, string> = {
  RUNNING: '#1f7a48', PAUSED: '#a57800', PRIMING: '#2f5b8a', SELFTEST: '#2f5b8a', PRIMED: '#2f5b8a',
  RINSEBACK: '#5b4a7a', ENDED: '#5b4a7a', FAULT: '#a0101f', IDLE: '#333344',
};
export const PRIORITY_COLOURS: Record<string, string> = { HIGH: '#ff3347', MEDIUM: '#ffd21f', LOW: '#00c8ff' };

export interface ChartDef { id: string; title: string; unit: string; channels: readonly string[]; band?: { around: string; halfWidth: number } }

function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, ...children: Array<Node | string>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

/** About `n` round steps covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((x) => x >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((x) => x * 1000);

/**
 * Time-axis ticks on round times of the site's clock (every 5 min, 1 h ...: at most about `n`), and whether
 * their labels need seconds.
 */
export function timeTicks(x0: number, x1: number, timeZone: string, n = 6): { ticks: number[]; seconds: boolean } {
  const step = TIME_STEPS.find((s) => (x1 - x0) / s <= n) ?? 86_400_000 * Math.ceil((x1 - x0) / n / 86_400_000);
  // The zone's offset at the start: ticks fall on round local times (09:00 local, not 09:00 UTC).
  const o = /([+-])(\d\d):(\d\d)$/.exec(zoned(x0, timeZone));
  const off = o ? (o[1] === '-' ? -1 : 1) * (Number(o[2]) * 60 + Number(o[3])) * 60_000 : 0;
  const ticks: number[] = [];
  for (let t = Math.ceil((x0 + off) / step) * step - off; t <= x1; t += step) ticks.push(t);
  return { ticks, seconds: step < 60_000 };
}

/**
 * Runs of consecutive buckets where `ys` has a value: a gap in the data is a gap in the line. Buckets without
 * samples are absent from `t`, so a jump of more than one bucket width is a gap too.
 */
function runs(ys: Array<number | null>, t: number[], bucketMs: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = -1;
  for (let i = 0; i <= ys.length; i++) {
    const has = i < ys.length && ys[i] !== null && Number.isFinite(ys[i]);
    if (has && start >= 0 && t[i] - t[i - 1] > bucketMs * 1.5) { out.push([start, i - 1]); start = -1; }
    if (has && start < 0) start = i;
    if (!has && start >= 0) { out.push([start, i - 1]); start = -1; }
  }
  return out;
}

/** The x range of the charts: the session's device-time span (to the last bucket while it runs). */
export function chartDomain(r: PerfusionRecord): [number, number] {
  const t = r.trends.t;
  const from = Math.min(Date.parse(r.session.startedAt), t[0] ?? Infinity);
  const lastBucket = t.length ? t[t.length - 1] + r.trends.bucketMs : from + 1;
  const to = r.session.endedAt ? Math.max(Date.parse(r.session.endedAt), lastBucket) : lastBucket;
  return [from, Math.max(to, from + 1)];
}

/** One chart of the record; null when the session has none of its channels. */
export function recordChart(r: PerfusionRecord, def: ChartDef): HTMLElement | null {
  const trends: RecordTrends = r.trends;
  const channels = def.channels.filter((c) => trends.series[c]);
  if (channels.length === 0) return null;
  const [x0, x1] = chartDomain(r);
  let lo = Infinity;
  let hi = -Infinity;
  for (const c of channels) {
    for (const v of trends.series[c].min) if (v !== null) lo = Math.min(lo, v);
    for (const v of trends.series[c].max) if (v !== null) hi = Math.max(hi, v);
  }
  const band = def.band && trends.series[def.band.around] ? def.band : undefined;
  if (band) { lo -= band.halfWidth; hi += band.halfWidth; }
  if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.06;
  lo -= pad;
  hi += pad;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const X = (t: number) => M.left + ((Math.min(Math.max(t, x0), x1) - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => M.top + (1 - (v - lo) / (hi - lo)) * ph;
  const f = (n: number) => n.toFixed(1);
  // A bucket's value is drawn at its middle.
  const bx = (i: number) => X(trends.t[i] + trends.bucketMs / 2);

  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'rec-svg', role: 'img', 'aria-label': `${def.title} (${def.unit})`, 'data-chart': def.id, preserveAspectRatio: 'xMidYMid meet' });
  svg.append(s('rect', { x: M.left, y: M.top, width: pw, height: ph, fill: '#0b1116', stroke: '#2a333d' }));

  // States behind everything.
  r.states.forEach((st, i) => {
    const end = r.states[i + 1]?.t ?? x1;
    if (end <= x0 || st.t >= x1) return;
    const xa = X(st.t);
    const xb = X(end);
    const g = s('g', { class: 'rec-state', 'data-state': st.state });
    g.append(s('rect', { x: f(xa), y: M.top, width: f(Math.max(0, xb - xa)), height: ph, fill: STATE_COLOURS[st.state] ?? '#333344', 'fill-opacity': 0.22 }),
      s('title', {}, `${st.state} from ${zoned(st.t, r.site.timeZone)}`));
    if (xb - xa > 50) g.append(s('text', { x: f(xa + 4), y: M.top + 12, class: 'rec-state-label', fill: '#c8d0d8', 'font-size': 11 }, st.state));
    svg.append(g);
  });

  // Grid and axes.
  for (const v of niceTicks(lo, hi, 5)) {
    const y = Y(v);
    if (y < M.top - 0.5 || y > M.top + ph + 0.5) continue;
    svg.append(s('line', { x1: M.left, x2: M.left + pw, y1: f(y), y2: f(y), stroke: '#2a333d', 'stroke-width': 1 }),
      s('text', { x: M.left - 6, y: f(y + 4), 'text-anchor': 'end', fill: '#c8d0d8', 'font-size': 12 }, String(+v.toFixed(3))));
  }
  const xt = timeTicks(x0, x1, r.site.timeZone);
  for (const t of xt.ticks) {
    const x = X(t);
    svg.append(s('line', { x1: f(x), x2: f(x), y1: M.top + ph, y2: M.top + ph + 4, stroke: '#5b6875' }),
      s('text', { x: f(x), y: H - 8, 'text-anchor': x > W - M.right - 20 ? 'end' : 'middle', fill: '#c8d0d8', 'font-size': 12 }, zoned(t, r.site.timeZone).slice(11, xt.seconds ? 19 : 16)));
  }

  // The setpoint band (STR ± 0.5 °C) from the setpoint's mean.
  if (band) {
    const sp = trends.series[band.around].mean;
    for (const [a, b] of runs(sp, trends.t, trends.bucketMs)) {
      const up: string[] = [];
      const down: string[] = [];
      for (let i = a; i <= b; i++) {
        up.push(`${f(bx(i))},${f(Y(sp[i]! + band.halfWidth))}`);
        down.unshift(`${f(bx(i))},${f(Y(sp[i]! - band.halfWidth))}`);
      }
      if (a === b) { up.push(`${f(bx(a) + 2)},${f(Y(sp[a]! + band.halfWidth))}`); down.unshift(`${f(bx(a) + 2)},${f(Y(sp[a]! - band.halfWidth))}`); }
      svg.append(s('path', { d: `M${up.join('L')}L${down.join('L')}Z`, fill: '#3ddc84', 'fill-opacity': 0.14, stroke: '#3ddc84', 'stroke-opacity': 0.6, 'stroke-dasharray': '3 3', class: 'rec-band', 'data-around': band.around }));
    }
  }

  // Envelopes first, then the means on top.
  const measured = channels.filter((c) => !SETPOINTS.has(c));
  const legend: HTMLElement[] = [];
  measured.forEach((c, k) => {
    const colour = COLOURS[k % COLOURS.length];
    const { min, max } = trends.series[c];
    const both = min.map((v, i) => (v === null || max[i] === null ? null : v));
    for (const [a, b] of runs(both, trends.t, trends.bucketMs)) {
      const up: string[] = [];
      const down: string[] = [];
      for (let i = a; i <= b; i++) {
        up.push(`${f(bx(i))},${f(Y(max[i]!))}`);
        down.unshift(`${f(bx(i))},${f(Y(min[i]!))}`);
      }
      svg.append(s('path', { d: `M${up.join('L')}L${down.join('L')}Z`, fill: colour, 'fill-opacity': 0.25, stroke: 'none', class: 'rec-envelope', 'data-channel': c }));
    }
  });
  channels.forEach((c) => {
    const sp = SETPOINTS.has(c);
    const colour = sp ? SETPOINT_COLOUR : COLOURS[measured.indexOf(c) % COLOURS.length];
    const mean = trends.series[c].mean;
    const d = runs(mean, trends.t, trends.bucketMs).map(([a, b]) => {
      const pts: string[] = [];
      for (let i = a; i <= b; i++) pts.push(`${f(bx(i))},${f(Y(mean[i]!))}`);
      // A lone bucket is still drawn: a short tick rather than nothing.
      if (a === b) pts.push(`${f(bx(a) + 2)},${f(Y(mean[a]!))}`);
      return `M${pts.join('L')}`;
    }).join('');
    if (d) {
      svg.append(s('path', {
        d, fill: 'none', stroke: colour, 'stroke-width': sp ? 1.5 : 1.8, 'stroke-linejoin': 'round',
        ...(sp ? { 'stroke-dasharray': '7 5' } : {}), class: sp ? 'rec-setpoint' : 'rec-mean', 'data-channel': c,
      }));
    }
    legend.push(h('span', { class: 'rec-key', 'data-channel': c },
      h('span', { class: sp ? 'rec-swatch rec-swatch-sp' : 'rec-swatch', 'data-colour': colour }), sp ? `${c} setpoint (dashed)` : `${c} mean, min–max shaded`));
  });

  // Alarm raises (gateway time; the console's clock may differ by its offset).
  for (const a of r.alarms) {
    if (a.raisedAt < x0 || a.raisedAt > x1) continue;
    const x = X(a.raisedAt);
    const colour = PRIORITY_COLOURS[a.priority] ?? '#ffffff';
    svg.append(s('g', { class: 'rec-alarm', 'data-priority': a.priority, 'data-rule': a.rule },
      s('line', { x1: f(x), x2: f(x), y1: M.top, y2: M.top + ph, stroke: colour, 'stroke-width': 1, 'stroke-dasharray': '2 3' }),
      s('path', { d: `M${f(x - 6)},${M.top + ph}L${f(x + 6)},${M.top + ph}L${f(x)},${M.top + ph - 10}Z`, fill: colour }),
      s('title', {}, `${a.priority} ${a.message} at ${zoned(a.raisedAt, r.site.timeZone)}`)));
  }
  if (band) legend.push(h('span', { class: 'rec-key' }, h('span', { class: 'rec-swatch rec-swatch-band' }), `${band.around} ± ${band.halfWidth} ${def.unit} band`));
  if (r.alarms.length) legend.push(h('span', { class: 'rec-key' }, '▲ alarm raised'));

  const fig = h('figure', { class: 'rec-chart', 'data-chart': def.id },
    h('figcaption', {}, h('strong', {}, def.title), ` (${def.unit})`), svg as unknown as Node, h('div', { class: 'rec-legend' }, ...legend));
  // Swatch colours go through the CSSOM (the page's CSP forbids style attributes).
  for (const sw of fig.querySelectorAll<HTMLElement>('.rec-swatch[data-colour]')) sw.style.background = sw.dataset.colour!;
  return fig;
}

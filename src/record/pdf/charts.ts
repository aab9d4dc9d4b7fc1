/**
 * The record's trends as vector charts, one per TREND_CHARTS entry that has data: the session states as
 * coloured bands behind, per channel the min-max envelope (light) and the mean line, setpoints as dashed steps,
 * the temperature band STR +/- 0.5 degC shaded, alarm raises as priority-coloured markers above the plot. The
 * time axis is in the site's local time. A null bucket, or a missing one (no sample at all), breaks a line.
 */
import { TREND_CHARTS, type PerfusionRecord, type TrendSeries } from '../types.js';
import { contentWidth, ensureSpace, FONT, INK, priorityColour, stateColour, type Doc } from './layout.js';
import { formatValue, localParts, offsetText } from './text.js';

type Chart = (typeof TREND_CHARTS)[number];

const PALETTE = ['#1f5fbf', '#e0620d', '#2a9d55', '#8e44ad'];
const SETPOINT_COLOUR = '#333333';
/** The band darkens whatever state colour is behind it, so it reads on every state. */
const BAND_COLOUR = '#3c3c3c';
const BAND_OPACITY = 0.16;
const SETPOINTS = new Set(['SQB', 'SQP', 'STR', 'SHEP']);

const AXIS_W = 40;
const MARKER_H = 7;
const PLOT_H = 118;
/** Title, marker strip, plot, time labels, legend. */
const CHART_H = 14 + MARKER_H + PLOT_H + 14 + 14 + 8;

interface Frame { x0: number; y0: number; w: number; h: number; from: number; to: number; lo: number; hi: number }

export function trendRange(record: PerfusionRecord): { from: number; to: number } {
  const { t, bucketMs } = record.trends;
  let from = Date.parse(record.session.startedAt);
  let to = record.session.endedAt !== null ? Date.parse(record.session.endedAt) : from + record.session.durationMs;
  if (t.length > 0) {
    from = Math.min(from, t[0]);
    to = Math.max(to, t[t.length - 1] + bucketMs);
  }
  if (!(to > from)) to = from + 60_000;
  return { from, to };
}

/** Charts that have at least one value, in TREND_CHARTS order. */
export function chartsWithData(record: PerfusionRecord): Chart[] {
  return TREND_CHARTS.filter((c) => c.channels.some((ch) => record.trends.series[ch]?.mean.some((v) => v !== null)));
}

/** The legend shared by the charts: states present in the session, alarm priorities, how a channel is drawn. */
export function drawTrendLegend(doc: Doc, record: PerfusionRecord): void {
  ensureSpace(doc, 30 + CHART_H);
  const left = doc.page.margins.left;
  let x = left;
  let y = doc.y;
  doc.font(FONT.regular).fontSize(7).fillColor(INK.text);
  const item = (draw: (x: number, y: number) => void, label: string) => {
    const w = 12 + doc.widthOfString(label) + 10;
    if (x + w > left + contentWidth(doc)) { x = left; y += 11; }
    draw(x, y);
    doc.fillColor(INK.text).text(label, x + 12, y, { lineBreak: false });
    x += w;
  };
  const { from, to } = trendRange(record);
  const st = record.states;
  const shown = st.filter((s, i) => Math.min(i + 1 < st.length ? st[i + 1].t : to, to) > Math.max(s.t, from));
  const states = [...new Set(shown.map((s) => s.state))];
  for (const s of states) item((sx, sy) => doc.rect(sx, sy - 0.5, 9, 8).fillColor(stateColour(s)).fill(), s);
  for (const p of ['HIGH', 'MEDIUM', 'LOW']) item((sx, sy) => triangle(doc, sx + 4.5, sy + 7, priorityColour(p)), `alarm ${p}`);
  x = left; y += 11;
  item((sx, sy) => doc.rect(sx, sy, 10, 7).fillColor(PALETTE[0]).fillOpacity(0.2).fill().fillOpacity(1), 'min-max of each time bucket');
  item((sx, sy) => doc.moveTo(sx, sy + 3.5).lineTo(sx + 10, sy + 3.5).lineWidth(1).strokeColor(PALETTE[0]).stroke(), 'mean');
  item((sx, sy) => doc.moveTo(sx, sy + 3.5).lineTo(sx + 10, sy + 3.5).lineWidth(1).dash(2, { space: 1.5 }).strokeColor(SETPOINT_COLOUR).stroke().undash(), 'setpoint');
  doc.y = y + 14;
  const bucket = Math.round(record.trends.bucketMs / 1000);
  doc.font(FONT.italic).fontSize(7).fillColor(INK.muted)
    .text(`Time bucket ${bucket} s. Telemetry and states on the console clock; alarm raises on the gateway clock.`, left, doc.y, { width: contentWidth(doc) });
  doc.y += 4;
  doc.fillColor(INK.text);
}

export function drawChart(doc: Doc, record: PerfusionRecord, chart: Chart, timeZone: string): void {
  ensureSpace(doc, CHART_H);
  const left = doc.page.margins.left;
  const { from, to } = trendRange(record);
  const series = chart.channels.map((ch) => [ch, record.trends.series[ch]] as const).filter((e): e is readonly [string, TrendSeries] => e[1] !== undefined);
  const band = chart.band ? record.trends.series[chart.band.around] : undefined;
  const [lo, hi, step] = yRange(series.map((s) => s[1]), band && chart.band ? { s: band, hw: chart.band.halfWidth } : undefined);

  // The title over the plot, the y axis unit over the tick labels.
  const titleY = doc.y;
  doc.font(FONT.bold).fontSize(8.5).fillColor(INK.text).text(chart.title, left + AXIS_W, titleY, { lineBreak: false });
  doc.font(FONT.bold).fontSize(7).text(chart.unit, left, titleY + 1.5, { width: AXIS_W - 3, align: 'right', lineBreak: false });
  doc.y = titleY + 13;
  const f: Frame = { x0: left + AXIS_W, y0: doc.y + MARKER_H, w: contentWidth(doc) - AXIS_W - 4, h: PLOT_H, from, to, lo, hi };
  const X = (t: number) => f.x0 + ((t - from) / (to - from)) * f.w;
  const Y = (v: number) => f.y0 + f.h - ((v - lo) / (hi - lo)) * f.h;

  doc.save();
  doc.rect(f.x0, f.y0, f.w, f.h).clip();
  drawStateBands(doc, record, f, X);
  drawGrid(doc, f, step, Y);
  if (band && chart.band) drawBand(doc, record, band, chart.band.halfWidth, X, Y);
  // Setpoints first: the readings are drawn over their reference.
  for (const [ch, s] of series) if (SETPOINTS.has(ch)) drawStep(doc, record, s, X, Y);
  series.forEach(([ch, s], i) => {
    if (!SETPOINTS.has(ch)) drawSeries(doc, record, s, PALETTE[i % PALETTE.length], X, Y);
  });
  doc.restore();
  doc.rect(f.x0, f.y0, f.w, f.h).lineWidth(0.5).strokeColor(INK.text).stroke();
  drawYLabels(doc, f, step, Y);
  drawTimeAxis(doc, f, X, timeZone);
  drawAlarmMarkers(doc, record, f, X);

  // Channel legend.
  let x = f.x0;
  const y = f.y0 + f.h + 16;
  doc.font(FONT.regular).fontSize(7);
  series.forEach(([ch], i) => {
    const sp = SETPOINTS.has(ch);
    const colour = sp ? SETPOINT_COLOUR : PALETTE[i % PALETTE.length];
    doc.moveTo(x, y + 3.5).lineTo(x + 12, y + 3.5).lineWidth(1.2).strokeColor(colour);
    if (sp) doc.dash(2, { space: 1.5 });
    doc.stroke().undash();
    const label = sp ? `${ch} setpoint` : ch;
    doc.fillColor(INK.text).text(label, x + 15, y, { lineBreak: false });
    x += 15 + doc.widthOfString(label) + 12;
  });
  if (chart.band) {
    doc.rect(x, y, 12, 7).fillColor(BAND_COLOUR).fillOpacity(BAND_OPACITY).fill().fillOpacity(1);
    doc.fillColor(INK.text).text(`${chart.band.around} \u00b1 ${chart.band.halfWidth} ${chart.unit}`, x + 15, y, { lineBreak: false });
  }
  doc.y = y + 16;
  doc.x = left;
}

function triangle(doc: Doc, cx: number, apexY: number, colour: string): void {
  doc.polygon([cx - 3.2, apexY - 6], [cx + 3.2, apexY - 6], [cx, apexY]).lineWidth(0.3).fillColor(colour).strokeColor('#222222').fillAndStroke();
}

/** Contiguous runs of bucket indexes where `ok(i)` holds and no bucket is missing in between. */
export function runs(t: number[], bucketMs: number, ok: (i: number) => boolean): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = -1;
  for (let i = 0; i <= t.length; i++) {
    const good = i < t.length && ok(i);
    const joined = good && start >= 0 && t[i] - t[i - 1] <= bucketMs * 1.5;
    if (start >= 0 && !joined) {
      out.push([start, i - 1]);
      start = -1;
    }
    if (good && start < 0) start = i;
  }
  return out;
}

function drawStateBands(doc: Doc, record: PerfusionRecord, f: Frame, X: (t: number) => number): void {
  const st = record.states;
  for (let i = 0; i < st.length; i++) {
    const a = Math.max(st[i].t, f.from);
    const b = Math.min(i + 1 < st.length ? st[i + 1].t : f.to, f.to);
    if (b <= a) continue;
    doc.rect(X(a), f.y0, Math.max(0.3, X(b) - X(a)), f.h).fillColor(stateColour(st[i].state)).fill();
  }
}

function drawGrid(doc: Doc, f: Frame, step: number, Y: (v: number) => number): void {
  doc.lineWidth(0.3).strokeColor('#9a9a9a');
  for (let v = f.lo; v <= f.hi + step / 1000; v += step) doc.moveTo(f.x0, Y(v)).lineTo(f.x0 + f.w, Y(v));
  doc.stroke();
}

function drawYLabels(doc: Doc, f: Frame, step: number, Y: (v: number) => number): void {
  const decimals = step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step) - 1e-9));
  doc.font(FONT.regular).fontSize(6.5).fillColor(INK.text);
  for (let v = f.lo; v <= f.hi + step / 1000; v += step) {
    doc.text(formatValue(v, decimals), f.x0 - AXIS_W, Y(v) - 3, { width: AXIS_W - 3, align: 'right', lineBreak: false });
  }
}

const TIME_STEPS = [60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000];

function drawTimeAxis(doc: Doc, f: Frame, X: (t: number) => number, timeZone: string): void {
  const span = f.to - f.from;
  const step = TIME_STEPS.find((s) => span / s <= 8) ?? Math.ceil(span / 8 / 86_400_000) * 86_400_000;
  const off = localParts(f.from, timeZone).offsetMin * 60_000;
  const startDay = dayOf(localParts(f.from, timeZone));
  doc.font(FONT.regular).fontSize(6.5).fillColor(INK.text).lineWidth(0.5).strokeColor(INK.text);
  let lastDay = startDay;
  for (let local = Math.ceil((f.from + off) / step) * step; local - off <= f.to; local += step) {
    const t = local - off;
    if (t < f.from) continue;
    const p = localParts(t, timeZone);
    const x = X(t);
    doc.moveTo(x, f.y0 + f.h).lineTo(x, f.y0 + f.h + 3).stroke();
    const day = dayOf(p);
    const label = `${day !== lastDay ? `${day.slice(5)} ` : ''}${String(p.h).padStart(2, '0')}:${String(p.mi).padStart(2, '0')}`;
    lastDay = day;
    // Labels stay under the plot: the first left-aligned, the last right-aligned when at an edge.
    const align = x - 25 < f.x0 ? 'left' : x + 25 > f.x0 + f.w ? 'right' : 'center';
    const lx = align === 'left' ? f.x0 : align === 'right' ? f.x0 + f.w - 50 : x - 25;
    doc.text(label, lx, f.y0 + f.h + 4, { width: 50, align, lineBreak: false });
  }
  const start = localParts(f.from, timeZone);
  doc.font(FONT.italic).fontSize(6.5).fillColor(INK.muted)
    .text(`site local time, ${timeZone} (UTC${offsetText(start.offsetMin)} at the start, ${startDay})`, f.x0 + f.w - 260, f.y0 + f.h + 16, { width: 260, align: 'right', lineBreak: false });
  doc.fillColor(INK.text);
}

function dayOf(p: { y: number; mo: number; d: number }): string {
  return `${p.y}-${String(p.mo).padStart(2, '0')}-${String(p.d).padStart(2, '0')}`;
}

function drawAlarmMarkers(doc: Doc, record: PerfusionRecord, f: Frame, X: (t: number) => number): void {
  // The highest priorities last, so they are on top where markers overlap.
  const rank = (p: string) => ({ LOW: 1, MEDIUM: 2, HIGH: 3 })[p.toUpperCase()] ?? 0;
  const alarms = [...record.alarms].filter((a) => a.raisedAt >= f.from && a.raisedAt <= f.to).sort((a, b) => rank(a.priority) - rank(b.priority));
  for (const a of alarms) triangle(doc, X(a.raisedAt), f.y0, priorityColour(a.priority));
}

function drawSeries(doc: Doc, record: PerfusionRecord, s: TrendSeries, colour: string, X: (t: number) => number, Y: (v: number) => number): void {
  const { t, bucketMs } = record.trends;
  const mid = (i: number) => X(t[i] + bucketMs / 2);
  const lowOf = (i: number) => s.min[i] ?? s.mean[i];
  const highOf = (i: number) => s.max[i] ?? s.mean[i];
  // Envelope first, then the mean line over it.
  doc.fillColor(colour).fillOpacity(0.2);
  for (const [a, b] of runs(t, bucketMs, (i) => lowOf(i) !== null && highOf(i) !== null)) {
    doc.moveTo(mid(a), Y(highOf(a)!));
    for (let i = a + 1; i <= b; i++) doc.lineTo(mid(i), Y(highOf(i)!));
    for (let i = b; i >= a; i--) doc.lineTo(mid(i), Y(lowOf(i)!));
    doc.closePath();
  }
  doc.fill().fillOpacity(1);
  doc.lineWidth(0.9).strokeColor(colour).lineJoin('round');
  for (const [a, b] of runs(t, bucketMs, (i) => s.mean[i] !== null)) {
    doc.moveTo(mid(a), Y(s.mean[a]!));
    // A single bucket is drawn as a short dash so it is visible.
    if (a === b) doc.lineTo(mid(a) + 1, Y(s.mean[a]!));
    for (let i = a + 1; i <= b; i++) doc.lineTo(mid(i), Y(s.mean[i]!));
  }
  doc.stroke();
}

function drawStep(doc: Doc, record: PerfusionRecord, s: TrendSeries, X: (t: number) => number, Y: (v: number) => number): void {
  const { t, bucketMs } = record.trends;
  doc.lineWidth(1).strokeColor(SETPOINT_COLOUR).dash(3, { space: 2 });
  for (const [a, b] of runs(t, bucketMs, (i) => s.mean[i] !== null)) {
    doc.moveTo(X(t[a]), Y(s.mean[a]!));
    for (let i = a + 1; i <= b; i++) doc.lineTo(X(t[i]), Y(s.mean[i - 1]!)).lineTo(X(t[i]), Y(s.mean[i]!));
    doc.lineTo(X(t[b] + bucketMs), Y(s.mean[b]!));
  }
  doc.stroke().undash();
}

function drawBand(doc: Doc, record: PerfusionRecord, s: TrendSeries, hw: number, X: (t: number) => number, Y: (v: number) => number): void {
  const { t, bucketMs } = record.trends;
  const steps: Array<Array<[number, number]>> = [];
  for (const [a, b] of runs(t, bucketMs, (i) => s.mean[i] !== null)) {
    const top: Array<[number, number]> = [];
    for (let i = a; i <= b; i++) {
      top.push([X(t[i]), s.mean[i]!], [X(i < b ? t[i + 1] : t[b] + bucketMs), s.mean[i]!]);
    }
    steps.push(top);
  }
  doc.fillColor(BAND_COLOUR).fillOpacity(BAND_OPACITY);
  for (const top of steps) {
    doc.moveTo(top[0][0], Y(top[0][1] + hw));
    for (const [x, v] of top) doc.lineTo(x, Y(v + hw));
    for (let k = top.length - 1; k >= 0; k--) doc.lineTo(top[k][0], Y(top[k][1] - hw));
    doc.closePath();
  }
  doc.fill().fillOpacity(1);
  // Thin edges at the band's limits.
  doc.lineWidth(0.4).strokeColor('#555555');
  for (const top of steps) {
    for (const sign of [1, -1]) {
      doc.moveTo(top[0][0], Y(top[0][1] + sign * hw));
      for (const [x, v] of top) doc.lineTo(x, Y(v + sign * hw));
    }
  }
  doc.stroke();
}

/** A y range on round ticks holding every value (and the band), with its tick step. */
function yRange(series: TrendSeries[], band?: { s: TrendSeries; hw: number }): [number, number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  const take = (v: number | null, d = 0) => {
    if (v === null || !Number.isFinite(v)) return;
    lo = Math.min(lo, v - d);
    hi = Math.max(hi, v + d);
  };
  for (const s of series) for (let i = 0; i < s.mean.length; i++) { take(s.min[i]); take(s.max[i]); take(s.mean[i]); }
  if (band) for (const v of band.s.mean) take(v, band.hw);
  if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const step = niceStep((hi - lo) / 5);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step];
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
}

/**
 * Trend charts of the last 5 / 15 / 60 minutes with uPlot: one small chart per channel so that
 * each carries its own alarm-limit bands (shaded outside the limits, dashed at them) and setpoint.
 * Samples are kept in a buffer of at most 60 min at ≤ 20 points/s; charts redraw at most 5×/s.
 */
import uPlot from 'uplot';
import { info, TRENDS } from './channels.js';
import { h } from './dom.js';
import type { Limits } from './limits.js';

export const WINDOWS_MIN = [5, 15, 60] as const;
const KEEP_MS = 61 * 60_000;
const MIN_STEP_MS = 50;

/** Column-wise samples for the charts: t (device time, ms) and one array per channel. */
export class TrendBuffer {
  t: number[] = [];
  readonly cols = new Map<string, Array<number | null>>();
  private readonly keys: string[];

  constructor() {
    this.keys = [...new Set(TRENDS.flatMap((c) => (c.setpoint ? [c.key, c.setpoint] : [c.key])))];
    for (const k of this.keys) this.cols.set(k, []);
  }

  push(t: number, v: Record<string, number | null | undefined>): void {
    const last = this.t[this.t.length - 1];
    if (last !== undefined && t < last + MIN_STEP_MS) return;
    this.t.push(t);
    for (const k of this.keys) {
      const x = v[k];
      this.cols.get(k)!.push(typeof x === 'number' ? x : null);
    }
    if (this.t.length % 512 === 0) this.trim(t - KEEP_MS);
  }

  /** Replaces everything before the first buffered sample with history points (prefill), in time order. */
  prefill(points: Array<{ t: number; v: Record<string, number | null> }>): void {
    const first = this.t[0] ?? Infinity;
    const older = points.filter((p) => p.t < first);
    if (older.length === 0) return;
    this.t = [...older.map((p) => p.t), ...this.t];
    for (const k of this.keys) {
      const col = this.cols.get(k)!;
      this.cols.set(k, [...older.map((p) => (typeof p.v[k] === 'number' ? p.v[k] as number : null)), ...col]);
    }
  }

  clear(): void {
    this.t = [];
    for (const k of this.keys) this.cols.set(k, []);
  }

  private trim(minT: number): void {
    let i = 0;
    while (i < this.t.length && this.t[i] < minT) i++;
    if (i === 0) return;
    this.t.splice(0, i);
    for (const col of this.cols.values()) col.splice(0, i);
  }
}

interface Chart { key: string; setpoint?: string; plot: uPlot; limits: Limits | null }

export class TrendCharts {
  readonly el: HTMLElement;
  private readonly charts: Chart[] = [];
  private readonly grid: HTMLElement;
  windowMin: number = 15;
  private lastDraw = 0;
  private observer: ResizeObserver;

  constructor(private readonly buffer: TrendBuffer, opts: { replay: boolean; onWindow?: (min: number) => void }) {
    const buttons = WINDOWS_MIN.map((m) => h('button', {
      type: 'button', class: 'win', 'data-window': m, 'aria-pressed': String(m === this.windowMin),
      onclick: () => { this.setWindow(m); opts.onWindow?.(m); },
    }, `${m} min`));
    this.grid = h('div', { class: 'trend-grid' });
    this.el = h('section', { class: 'trends', 'aria-label': 'Trends' },
      h('div', { class: 'trend-head' }, h('h2', {}, opts.replay ? 'Trends — REPLAY' : 'Trends'), h('div', { class: 'wins', role: 'group', 'aria-label': 'Time window' }, ...buttons)),
      this.grid);
    for (const t of TRENDS) {
      const box = h('div', { class: 'trend', 'data-channel': t.key });
      this.grid.append(box);
      const chart: Chart = { key: t.key, setpoint: t.setpoint, plot: null as unknown as uPlot, limits: null };
      chart.plot = this.makePlot(box, chart, opts.replay);
      this.charts.push(chart);
    }
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(this.grid);
  }

  setWindow(min: number): void {
    this.windowMin = min;
    for (const b of this.el.querySelectorAll<HTMLButtonElement>('button.win')) b.setAttribute('aria-pressed', String(Number(b.dataset.window) === min));
    this.lastDraw = 0;
  }

  setLimits(limits: Map<string, Limits>): void {
    for (const c of this.charts) c.limits = limits.get(c.key) ?? null;
  }

  /**
   * Redraws for a window ending at `endT` (device time); throttled. A replay passes `notBefore` (its start),
   * so a short recording fills the chart instead of being a sliver at its right edge.
   */
  render(endT: number | null, now: number, notBefore = -Infinity): void {
    if (endT === null) return;
    if (now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const from = Math.min(Math.max(endT - this.windowMin * 60_000, notBefore), endT - 10_000);
    const t = this.buffer.t;
    for (const c of this.charts) {
      const data: uPlot.AlignedData = c.setpoint
        ? [t, this.buffer.cols.get(c.key)!, this.buffer.cols.get(c.setpoint)!]
        : [t, this.buffer.cols.get(c.key)!];
      c.plot.batch(() => {
        c.plot.setData(data, false);
        c.plot.setScale('x', { min: from, max: endT });
      });
    }
  }

  destroy(): void {
    this.observer.disconnect();
    for (const c of this.charts) c.plot.destroy();
  }

  private resize(): void {
    for (const c of this.charts) {
      const box = c.plot.root.parentElement!;
      const w = Math.max(200, Math.floor(box.clientWidth));
      // uPlot's height is the canvas only: its title sits above it, inside the same box.
      const title = (c.plot.root.querySelector('.u-title') as HTMLElement | null)?.offsetHeight ?? 0;
      const hgt = Math.max(80, Math.floor(box.clientHeight) - title - 2);
      if (c.plot.width !== w || c.plot.height !== hgt) c.plot.setSize({ width: w, height: hgt });
    }
  }

  private makePlot(box: HTMLElement, chart: Chart, replay: boolean): uPlot {
    const ci = info(chart.key);
    const series: uPlot.Series[] = [{}, { label: chart.key, stroke: '#ffffff', width: 1.5, points: { show: false } }];
    if (chart.setpoint) series.push({ label: `set`, stroke: '#9aa7b4', width: 1, dash: [6, 4], points: { show: false } });
    const opts: uPlot.Options = {
      title: `${chart.key} ${ci.unit}${replay ? ' · REPLAY' : ''}`,
      width: 300, height: 120, ms: 1, pxAlign: 0,
      cursor: { show: false },
      legend: { show: false },
      scales: {
        x: { time: true },
        y: {
          range: (_u, min, max) => {
            const l = chart.limits;
            let lo = min ?? 0;
            let hi = max ?? 1;
            // Keep the limits in view: how close a value runs to its limit is what the chart is for.
            if (l?.lo !== null && l?.lo !== undefined) lo = Math.min(lo, l.lo);
            if (l?.hi !== null && l?.hi !== undefined) hi = Math.max(hi, l.hi);
            const pad = Math.max((hi - lo) * 0.08, 0.5);
            return [lo - pad, hi + pad];
          },
        },
      },
      axes: [
        {
          stroke: '#c8d0d8', grid: { stroke: '#2a333d', width: 1 }, ticks: { stroke: '#2a333d' }, font: '12px system-ui', size: 30,
          values: (_u, splits) => splits.map((v) => { const d = new Date(v); return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`; }),
        },
        { stroke: '#c8d0d8', grid: { stroke: '#2a333d', width: 1 }, ticks: { stroke: '#2a333d' }, font: '12px system-ui', size: 48 },
      ],
      series,
      hooks: { drawClear: [(u) => drawBands(u, chart.limits)] },
    };
    return new uPlot(opts, [[], [], ...(chart.setpoint ? [[]] : [])] as unknown as uPlot.AlignedData, box);
  }
}

/** Shades the regions beyond the alarm limits and draws the limits dashed (before the series). */
function drawBands(u: uPlot, l: Limits | null): void {
  if (!l) return;
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.fillStyle = 'rgba(230, 40, 40, 0.18)';
  ctx.strokeStyle = 'rgba(255, 90, 90, 0.9)';
  ctx.setLineDash([8, 6]);
  ctx.lineWidth = 1;
  const band = (v: number, above: boolean) => {
    const y = Math.round(u.valToPos(v, 'y', true));
    const y0 = above ? top : Math.max(top, y);
    const y1 = above ? Math.min(top + height, y) : top + height;
    if (y1 > y0) ctx.fillRect(left, y0, width, y1 - y0);
    if (y >= top && y <= top + height) {
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
    }
  };
  if (l.hi !== null) band(l.hi, true);
  if (l.lo !== null) band(l.lo, false);
  ctx.restore();
}

/**
 * The curve of bench/ingest.ts as a standalone SVG: live p99 (sample to WebSocket client) and journal lag
 * against the extra delay of every fsync, one line per design. Log scales: the designs differ by 1,000x.
 */
export interface CurvePoint {
  design: string;
  delayMs: number;
  p50: number;
  p99: number;
  /** Share of (samples x clients) delivered during the load. */
  delivered: number;
  /** Load end until the journal held every sample, s (NaN: not within the cap). */
  journalLagS: number | null;
  /** The same samples at a bare MQTT.js subscriber in the same run: the publishers' and the broker's share. */
  brokerP50?: number;
  brokerP99?: number;
}

const W = 460;
const H = 300;
const PAD = { l: 84, r: 30, t: 36, b: 48 };
const COLOURS = ['#1b6ac9', '#2e9e44', '#c43c39', '#8a5cc2'];

function panel(x0: number, title: string, unit: string, points: CurvePoint[], value: (p: CurvePoint) => number, floor: number): string {
  const designs = [...new Set(points.map((p) => p.design))];
  const delays = [...new Set(points.map((p) => p.delayMs))].sort((a, b) => a - b);
  const finite = points.map(value).filter((v) => Number.isFinite(v) && v > 0);
  const top = 10 ** Math.ceil(Math.log10(Math.max(floor * 10, ...finite)));
  const x = (d: number) => x0 + PAD.l + ((W - PAD.l - PAD.r) * delays.indexOf(d)) / Math.max(1, delays.length - 1);
  const y = (v: number) => {
    const c = Math.max(floor, Math.min(top, v));
    return PAD.t + (H - PAD.t - PAD.b) * (1 - Math.log10(c / floor) / Math.log10(top / floor));
  };
  const out: string[] = [`<text x="${x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">${title}</text>`];
  for (let v = floor; v <= top; v *= 10) {
    out.push(`<line x1="${x0 + PAD.l}" x2="${x0 + W - PAD.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${x0 + PAD.l - 6}" y="${y(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toPrecision(1)} ${unit}</text>`);
  }
  for (const d of delays) out.push(`<text x="${x(d)}" y="${H - PAD.b + 18}" text-anchor="middle">+${d} ms</text>`);
  out.push(`<text x="${x0 + W / 2}" y="${H - 8}" text-anchor="middle">extra time per fsync</text>`);
  designs.forEach((design, i) => {
    const pts = points.filter((p) => p.design === design).sort((a, b) => a.delayMs - b.delayMs);
    const colour = COLOURS[i % COLOURS.length];
    const path = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p.delayMs).toFixed(1)},${y(Number.isFinite(value(p)) ? value(p) : top).toFixed(1)}`).join(' ');
    out.push(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    for (const p of pts) {
      const v = value(p);
      out.push(`<circle cx="${x(p.delayMs).toFixed(1)}" cy="${y(Number.isFinite(v) ? v : top).toFixed(1)}" r="3" fill="${colour}"><title>${design}, +${p.delayMs} ms: ${Number.isFinite(v) ? v : 'beyond the cap'}</title></circle>`);
    }
  });
  return out.join('\n');
}

export function drawLatencyCurve(points: CurvePoint[]): string {
  const designs = [...new Set(points.map((p) => p.design))];
  const legend = designs.map((d, i) => `<rect x="${PAD.l + i * 230}" y="${H + 8}" width="12" height="12" fill="${COLOURS[i % COLOURS.length]}"/>`
    + `<text x="${PAD.l + i * 230 + 18}" y="${H + 19}">${d}</text>`).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 30}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
${panel(0, 'Live p99, sample to WebSocket client', 'ms', points, (p) => p.p99, 1)}
${panel(W, 'Journal lag after the load (top: not caught up in 20 s)', 's', points, (p) => p.journalLagS ?? NaN, 0.01)}
${legend}
</svg>
`;
}

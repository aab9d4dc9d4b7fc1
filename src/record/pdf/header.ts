/** Page one of the record: who, where, which console and session, when, how long in each state, and its status. */
import { SESSION_STATES } from '../../protocol/types.js';
import type { RecordView } from '../types.js';
import { contentWidth, ensureSpace, FONT, heading, INK, stateColour, type Doc } from './layout.js';
import { drawTable } from './table.js';
import { formatDuration, formatLocal, formatUtc, pdfText } from './text.js';

export async function drawHeader(doc: Doc, view: RecordView, timeZone: string): Promise<void> {
  const { record: r } = view;
  const left = doc.page.margins.left;
  const width = contentWidth(doc);
  doc.font(FONT.bold).fontSize(17).fillColor(INK.text).text('Perfusion record', left, doc.y, { width });
  const where = [r.site.name, r.site.gateway ? `gateway ${r.site.gateway}` : null].filter((s): s is string => !!s).join(' \u00b7 ');
  doc.font(FONT.regular).fontSize(9.5).fillColor(INK.muted).text(pdfText(where || 'site not configured'), left, doc.y + 1, { width });
  doc.y += 6;
  drawStatus(doc, view);

  const start = Date.parse(r.session.startedAt);
  const end = r.session.endedAt !== null ? Date.parse(r.session.endedAt) : null;
  const na = (v: string | null) => (v === null || v === '' ? 'not reported' : v);
  kvGrid(doc, [
    ['Site', r.site.name ?? 'not configured'], ['Gateway', r.site.gateway ?? 'not configured'],
    ['Console', r.console.device], ['Model', na(r.console.model)],
    ['Serial number', na(r.console.serialNo)], ['Firmware', na(r.console.fw)],
    ['Session', r.session.sessionId], ['Participant code', r.session.participant ?? 'not recorded'],
    ['Start (UTC)', formatUtc(start)], ['Start (site local)', formatLocal(start, timeZone)],
    ['End (UTC)', end === null ? 'still running' : formatUtc(end)], ['End (site local)', end === null ? 'still running' : formatLocal(end, timeZone)],
    ['Duration', formatDuration(r.session.durationMs)], ['End reason', r.session.endReason ?? (r.session.running ? 'running' : '-')],
    ['Site time zone', timeZone === r.site.timeZone ? timeZone : `${timeZone} (the configured zone ${r.site.timeZone} is unknown)`], ['Record format', `${r.format} v${r.version}`],
  ]);

  heading(doc, 'Time in each state', 40);
  const total = Object.values(r.session.stateMs).reduce((a, b) => a + (b ?? 0), 0);
  const known = new Set<string>(SESSION_STATES);
  const order = [...SESSION_STATES, ...Object.keys(r.session.stateMs).filter((s) => !known.has(s)).sort()];
  const rows = order
    .map((s) => [s, (r.session.stateMs as Record<string, number | undefined>)[s] ?? 0] as const)
    .filter(([, ms]) => ms > 0)
    .map(([s, ms]) => ({ cells: [s, formatDuration(ms), total > 0 ? `${((ms / total) * 100).toFixed(1)} %` : '-'], mark: stateColour(s) }));
  await drawTable(doc, [{ header: 'State', width: 3 }, { header: 'Time (H:MM:SS)', width: 3, align: 'right' }, { header: 'Share of the session', width: 3, align: 'right' }, { header: '', width: 6 }], rows, { size: 8, empty: 'No state time recorded.' });
}

/** Signed or not, changed since signed, still running: said first, in words. */
function drawStatus(doc: Doc, view: RecordView): void {
  const lines: Array<[string, string]> = [];
  if (view.record.session.running) lines.push(['SESSION STILL RUNNING: this record is provisional and cannot be signed until the session has ended.', INK.warn]);
  if (view.signatures.length === 0) lines.push(['Not signed.', INK.text]);
  else {
    const who = view.signatures.map((s) => `${s.meaning} by ${s.printedName}`).join('; ');
    lines.push([`Signed (${view.signatures.length}): ${who}.`, INK.text]);
  }
  if (view.changedSinceSigned) lines.push(['CHANGED SINCE SIGNED: the record differs from what a signature applies to (see the signature manifest).', INK.warn]);
  if (view.amendments.length > 0) lines.push([`${view.amendments.length} amendment(s) after the first signature (listed at the end).`, INK.text]);
  const left = doc.page.margins.left;
  for (const [text, colour] of lines) {
    doc.font(FONT.bold).fontSize(9).fillColor(colour).text(pdfText(text), left, doc.y, { width: contentWidth(doc) });
  }
  doc.fillColor(INK.text);
  doc.y += 6;
}

/** Label-value pairs in two columns; long values wrap. */
function kvGrid(doc: Doc, pairs: Array<[string, string]>): void {
  const left = doc.page.margins.left;
  const half = contentWidth(doc) / 2;
  const labelW = 92;
  const size = 8.5;
  for (let i = 0; i < pairs.length; i += 2) {
    const row = pairs.slice(i, i + 2).map(([k, v]) => [pdfText(k), pdfText(v)] as const);
    doc.font(FONT.regular).fontSize(size);
    const h = Math.max(...row.map(([, v]) => doc.heightOfString(v, { width: half - labelW - 8 }))) + 3;
    ensureSpace(doc, h);
    const y = doc.y;
    row.forEach(([k, v], j) => {
      const x = left + j * half;
      doc.font(FONT.bold).fontSize(size).fillColor(INK.muted).text(k, x, y, { width: labelW, lineBreak: false });
      doc.font(FONT.regular).fontSize(size).fillColor(INK.text).text(v, x + labelW, y, { width: half - labelW - 8 });
    });
    doc.y = y + h;
  }
  doc.x = left;
}

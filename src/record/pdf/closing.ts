/**
 * The end of the record: completeness and per-channel statistics, the record's SHA-256, the signature manifest
 * (21 CFR 11.50: printed name, date and time, meaning; 11.70: bound to the record's hash) and the amendments
 * made after the first signature.
 */
import type { RecordSignature, RecordView } from '../types.js';
import { contentWidth, ensureSpace, FONT, heading, INK, paragraph, type Doc } from './layout.js';
import { drawTable, type Row } from './table.js';
import { formatLocal, formatUtc, formatValue, pdfText, type TableTime } from './text.js';

/** Channels in the ICD's order with their units and printed decimals; others follow, sorted. */
const CHANNELS: ReadonlyArray<[string, string, number]> = [
  ['QB', 'mL/min', 0], ['SQB', 'mL/min', 0], ['QP', 'mL/min', 1], ['SQP', 'mL/min', 1], ['QR', 'mL/min', 0],
  ['PA', 'mmHg', 0], ['PF', 'mmHg', 0], ['PV', 'mmHg', 0], ['PP', 'mmHg', 0], ['TMP', 'mmHg', 0], ['DPR', 'mmHg', 0],
  ['TR', '\u00b0C', 2], ['STR', '\u00b0C', 2], ['TB', '\u00b0C', 2], ['HEP', 'mL/h', 1], ['SHEP', 'mL/h', 1],
  ['AIR', '0/1', 0], ['BLD', '0/1', 0], ['PH', 'pH', 2], ['DO', '% sat', 0],
];

export async function drawCompleteness(doc: Doc, view: RecordView): Promise<void> {
  const r = view.record;
  const c = r.completeness;
  heading(doc, 'Completeness and channel statistics');
  const ratio = c.ratio === null ? '-' : `${(c.ratio * 100).toFixed(2)} %`;
  await drawTable(doc, [
    { header: 'Frames expected', width: 1, align: 'right' }, { header: 'Received', width: 1, align: 'right' },
    { header: 'Lost', width: 1, align: 'right' }, { header: 'Received / expected', width: 1, align: 'right' },
    { header: 'Stored', width: 1, align: 'right' }, { header: 'Keep-alives assumed', width: 1, align: 'right' },
    { header: 'Console restarts', width: 1, align: 'right' },
  ], [{ cells: [c.expected, c.received, c.lost, ratio, c.stored, c.keepAlivesAssumed, c.restarts].map(String) }], { size: 8 });
  const band = r.temperature.trInBandPct;
  doc.y += 3;
  paragraph(doc, band === null
    ? 'TR within STR \u00b1 0.5 \u00b0C: not computed (no TR or no STR in the session).'
    : `TR within STR \u00b1 0.5 \u00b0C for ${band.toFixed(1)} % of ${Math.round(r.temperature.coveredMs / 60_000)} min covered.`, { size: 8 });
  doc.y += 4;

  const known = new Map(CHANNELS.map(([k, u, d]) => [k, { unit: u, decimals: d }]));
  const keys = [...CHANNELS.map(([k]) => k).filter((k) => r.channels[k]), ...Object.keys(r.channels).filter((k) => !known.has(k)).sort()];
  const rows = function* (): Iterable<Row> {
    for (const k of keys) {
      const s = r.channels[k];
      const { unit, decimals } = known.get(k) ?? { unit: '', decimals: 2 };
      yield {
        cells: [{ text: k, font: FONT.bold }, unit, formatValue(s.min, decimals), formatValue(s.mean, decimals + 1), formatValue(s.max, decimals), String(s.samples), String(s.faults)],
      };
    }
  };
  await drawTable(doc, [
    { header: 'Channel', width: 2 }, { header: 'Unit', width: 2 }, { header: 'Min', width: 2, align: 'right' },
    { header: 'Mean', width: 2, align: 'right' }, { header: 'Max', width: 2, align: 'right' },
    { header: 'Valid samples', width: 2, align: 'right' }, { header: 'Sensor faults', width: 2, align: 'right' },
  ], rows(), { size: 8, empty: 'No telemetry in the session.' });
}

export function drawHash(doc: Doc, view: RecordView): void {
  heading(doc, 'Record SHA-256', 50);
  paragraph(doc, 'SHA-256 of the canonical JSON of the record above (everything before this section). A signature applies to the record with this hash; signatures and amendments are not part of it.', { size: 8 });
  doc.y += 2;
  // Courier, one line: pdftotext and a reader's eye both get one 64-character token.
  doc.font(FONT.mono).fontSize(9.5).fillColor(INK.text).text(pdfText(view.sha256), doc.page.margins.left, doc.y, { lineBreak: false });
  doc.y += 14;
}

export function drawSignatures(doc: Doc, view: RecordView, timeZone: string): void {
  heading(doc, 'Signature manifest (21 CFR 11.50)', 70);
  if (view.signatures.length === 0) {
    doc.font(FONT.bold).fontSize(11).fillColor(INK.text).text('Not signed', doc.page.margins.left, doc.y);
    doc.font(FONT.regular).fontSize(8).fillColor(INK.muted).text('No electronic signature applies to this record.', doc.page.margins.left, doc.y + 1);
    doc.fillColor(INK.text);
    return;
  }
  for (const s of view.signatures) drawSignature(doc, s, timeZone);
}

function drawSignature(doc: Doc, s: RecordSignature, timeZone: string): void {
  const left = doc.page.margins.left;
  const width = contentWidth(doc);
  const name = pdfText(`${s.printedName}  \u2014  ${s.meaning.toUpperCase()}`);
  doc.font(FONT.bold).fontSize(10);
  const nameHeight = doc.heightOfString(name, { width: width - 16 });
  // The block stays on one page, so its frame is drawn around all of it.
  ensureSpace(doc, nameHeight + (s.changedSince ? 80 : 58));
  const top = doc.y;
  const x = left + 8;
  const w = width - 16;
  doc.y += 5;
  doc.font(FONT.bold).fontSize(10).fillColor(INK.text).text(name, x, doc.y, { width: w });
  doc.font(FONT.regular).fontSize(8.5)
    .text(pdfText(`Meaning: ${s.meaning}. User ${s.user}, role ${s.role}. Audit record #${s.auditId}.`), x, doc.y + 1, { width: w })
    .text(`Signed ${formatUtc(s.at)} (site local ${s.atLocal || formatLocal(s.at, timeZone)})`, x, doc.y + 1, { width: w })
    .text('Applies to the record with SHA-256:', x, doc.y + 1, { width: w });
  doc.font(FONT.mono).fontSize(8.5).text(pdfText(s.recordSha256), x, doc.y + 1, { lineBreak: false });
  doc.y += 11;
  if (s.changedSince) {
    doc.y += 2;
    const y = doc.y;
    doc.rect(x, y, w, 15).fillColor('#fde8ea').fill();
    doc.font(FONT.bold).fontSize(9).fillColor(INK.warn)
      .text('CHANGED SINCE SIGNED: the record no longer has the SHA-256 this signature applies to.', x + 4, y + 3.5, { width: w - 8, lineBreak: false });
    doc.y = y + 17;
  } else {
    doc.font(FONT.regular).fontSize(8).fillColor('#1d6b3a').text('Matches the record above.', x, doc.y + 1, { width: w });
  }
  doc.y += 4;
  doc.rect(left, top, width, doc.y - top).lineWidth(0.6).strokeColor(s.changedSince ? INK.warn : INK.rule).stroke();
  doc.y += 6;
  doc.fillColor(INK.text);
}

export async function drawAmendments(doc: Doc, view: RecordView, tt: TableTime): Promise<void> {
  heading(doc, `Amendments after the first signature (${view.amendments.length})`);
  const rows = function* (): Iterable<Row> {
    for (const a of view.amendments) {
      yield { cells: [tt.format(a.at), `${a.user}\n(${a.role})`, a.action, a.summary, { text: a.reason, font: FONT.bold }] };
    }
  };
  await drawTable(doc, [
    { header: 'When (gateway)', width: 13 }, { header: 'By', width: 14 }, { header: 'Action', width: 14 },
    { header: 'What changed', width: 30 }, { header: 'Reason given', width: 29 },
  ], rows(), { empty: view.signatures.length === 0 ? 'Not signed: no amendment applies.' : 'No change since the first signature.' });
}

/**
 * Tables of the record PDF: wrapped cells, rows that break across pages with the header row repeated, and a
 * row taller than a whole page (a 2,000-character note) continued on the next page rather than cut.
 *
 * Rows are taken from an iterable and drawn one at a time, so a table of thousands of alarms holds one row's
 * cells in memory beside the PDF's own page buffers; every few rows the table yields to the event loop, so a
 * long record never holds up the gateway's alarms and ingest for more than a moment.
 */
import { bottomY, contentWidth, FONT, INK, yieldToEventLoop, type Doc } from './layout.js';
import { pdfText } from './text.js';
import { measureOf, type TextMeasure } from './wrap.js';

export interface Column {
  header: string;
  /** Relative width: the widths are scaled to the content width. */
  width: number;
  align?: 'left' | 'right';
  /** Font of the column's cells (e.g. Courier for hashes). */
  font?: string;
}

export interface Cell { text: string; font?: string; colour?: string }

export interface Row {
  cells: Array<string | Cell>;
  /** Colour of a bar at the row's left edge (alarm priority, adverse event). */
  mark?: string;
}

export interface TableOptions {
  /** Font size, points. */
  size?: number;
  /** Printed instead of the table when there is no row. */
  empty?: string;
}

/** Rows drawn between two yields to the event loop (a few tens of ms on the gateway's 2-core machine). */
const YIELD_EVERY_ROWS = 25;
const PAD_X = 2.5;
const PAD_Y = 2;
const MARK_W = 2.5;

interface Placed { x: number; w: number; inset: number; inner: number; col: Column }
/** A cell broken into lines. */
interface Laid { lines: string[]; font: string; colour: string; lineHeight: number }

export async function drawTable(doc: Doc, columns: readonly Column[], rows: Iterable<Row>, opts: TableOptions = {}): Promise<number> {
  const size = opts.size ?? 7.5;
  const m = measureOf(doc);
  const total = columns.reduce((a, c) => a + c.width, 0);
  const left = doc.page.margins.left;
  const width = contentWidth(doc);
  let x = left;
  const placed: Placed[] = columns.map((col, i) => {
    const w = (col.width / total) * width;
    // The first column also leaves room for the row mark.
    const inset = i === 0 ? PAD_X + MARK_W : PAD_X;
    const p = { x, w, inset, inner: w - inset - PAD_X, col };
    x += w;
    return p;
  });
  const lay = (cells: Array<string | Cell>): Laid[] => placed.map((p, i) => {
    const c = cells[i] ?? '';
    const cell = typeof c === 'string' ? { text: c } : c;
    const font = cell.font ?? p.col.font ?? FONT.regular;
    const text = pdfText(cell.text);
    return { lines: text === '' ? [] : m.wrap(text, font, size, p.inner), font, colour: cell.colour ?? INK.text, lineHeight: m.lineHeight(font, size) };
  });
  const heightOf = (laid: Laid[]) => Math.ceil(Math.max(size * 1.2, ...laid.map((l) => l.lines.length * l.lineHeight)) + 2 * PAD_Y);
  const header = lay(columns.map((c) => ({ text: c.header, font: FONT.bold })));
  const headerHeight = heightOf(header);
  const top = () => doc.page.margins.top;

  const drawHeader = () => {
    const y = doc.y;
    doc.rect(left, y, width, headerHeight).fillColor(INK.headFill).fill();
    drawCells(doc, m, placed, header, size, y);
    doc.y = y + headerHeight;
  };
  const newPageWithHeader = () => {
    doc.addPage();
    drawHeader();
  };

  let count = 0;
  for (const row of rows) {
    if (count === 0) {
      // The header and the first row stay together.
      if (doc.y + headerHeight + 14 > bottomY(doc)) doc.addPage();
      drawHeader();
    }
    count++;
    if (count % YIELD_EVERY_ROWS === 0) await yieldToEventLoop(doc);
    let laid = lay(row.cells);
    for (;;) {
      const h = heightOf(laid);
      const room = bottomY(doc) - doc.y;
      // A row that fits on a fresh page moves there whole; one taller than any page starts here if a few lines fit.
      const tallerThanAPage = h > bottomY(doc) - top() - headerHeight;
      if (h > room && doc.y > top() + headerHeight + 1 && (!tallerThanAPage || room < 4 * size * 1.2 + 2 * PAD_Y)) {
        newPageWithHeader();
        continue;
      }
      if (h <= room) {
        drawRow(doc, m, placed, laid, size, h, row.mark);
        break;
      }
      // Taller than a whole page: print the lines that fit, continue the rest on the next page.
      const now = laid.map((l) => ({ ...l, lines: l.lines.slice(0, Math.max(1, Math.floor((room - 2 * PAD_Y) / l.lineHeight))) }));
      laid = laid.map((l, i) => ({ ...l, lines: l.lines.slice(now[i].lines.length) }));
      if (laid[0].lines.length === 0) laid[0] = { ...laid[0], font: FONT.italic, lines: ['(continued)'] };
      drawRow(doc, m, placed, now, size, room, row.mark);
      newPageWithHeader();
    }
  }
  if (count === 0 && opts.empty) {
    doc.font(FONT.italic).fontSize(size + 1).fillColor(INK.muted).text(pdfText(opts.empty), left, doc.y, { width });
  }
  doc.fillColor(INK.text);
  doc.x = left;
  return count;
}

function drawRow(doc: Doc, m: TextMeasure, placed: Placed[], laid: Laid[], size: number, h: number, mark?: string): void {
  const y = doc.y;
  if (mark) doc.rect(placed[0].x, y + 0.5, MARK_W, h - 1).fillColor(mark).fill();
  drawCells(doc, m, placed, laid, size, y);
  const last = placed[placed.length - 1];
  doc.moveTo(placed[0].x, y + h).lineTo(last.x + last.w, y + h).lineWidth(0.3).strokeColor(INK.rule).stroke();
  doc.y = y + h;
}

function drawCells(doc: Doc, m: TextMeasure, placed: Placed[], laid: Laid[], size: number, y: number): void {
  for (let i = 0; i < placed.length; i++) {
    const l = laid[i];
    if (l.lines.length === 0) continue;
    const p = placed[i];
    l.lines.forEach((line, k) => {
      const dx = p.col.align === 'right' ? p.inner - m.width(line, l.font, size) : 0;
      doc.font(l.font).fontSize(size).fillColor(l.colour).text(line, p.x + p.inset + dx, y + PAD_Y + k * l.lineHeight, { lineBreak: false });
    });
  }
}

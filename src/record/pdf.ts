/**
 * The perfusion record as a PDF: the document a perfusionist files and an inspector reads (21 CFR Part 11
 * electronic record with its signature manifest).
 *
 * `renderRecordPdf` returns the document at once and lays the record out in slices, yielding to the event loop
 * between them (a record of thousands of alarms takes seconds to lay out, and the gateway's alarm engine and
 * ingest must not wait); it ends the document itself. The caller pipes the returned stream (a Readable) to the
 * HTTP reply or a file; the bytes flow when the layout is done ("page N of M" needs the page count). If the
 * reader goes away the layout stops; a layout failure destroys the stream with the error. Vector drawing and the standard fonts only, so the gateway needs no
 * font files and no browser. Sections, in this order: header, trends, alarms, device events, commands,
 * annotations, completeness and channel statistics, the record's SHA-256, the signature manifest, amendments.
 * Every page carries the console, the session and "page N of M" in its footer.
 */
import PDFDocument from 'pdfkit';
import type { RecordView } from './types.js';
import { drawAmendments, drawCompleteness, drawHash, drawSignatures } from './pdf/closing.js';
import { chartsWithData, drawChart, drawTrendLegend } from './pdf/charts.js';
import { drawHeader } from './pdf/header.js';
import { FONT, heading, INK, paragraph, PAGE, RenderAborted, yieldToEventLoop, type Doc } from './pdf/layout.js';
import { drawAlarms, drawAnnotations, drawCommands, drawEvents } from './pdf/logs.js';
import { pdfText, TableTime, usableTimeZone } from './pdf/text.js';

export interface RecordPdfOptions {
  /** Deflate page contents (default true); off only to inspect the PDF's operators. */
  compress?: boolean;
}

export function renderRecordPdf(view: RecordView, opts: RecordPdfOptions = {}): PDFKit.PDFDocument {
  const r = view.record;
  const timeZone = usableTimeZone(r.site.timeZone);
  const doc = new PDFDocument({
    size: PAGE.size,
    margins: { top: PAGE.margin, left: PAGE.margin, right: PAGE.margin, bottom: PAGE.bottom },
    bufferPages: true,
    compress: opts.compress ?? true,
    info: {
      Title: pdfText(`Perfusion record ${r.console.device} ${r.session.sessionId}`),
      Subject: `SHA-256 ${view.sha256}`,
      Creator: 'msc-gateway',
      Producer: 'msc-gateway (pdfkit)',
      CreationDate: new Date(Date.parse(view.generatedAt) || 0),
    },
  });
  compactFinishedPages(doc);
  void (async () => {
    try {
      await layOut(doc, view, timeZone);
      drawFooters(doc, view);
      doc.end();
    } catch (err) {
      // A reader that went away is not an error of the record; anything else fails the stream the caller pipes.
      if (!(err instanceof RenderAborted)) doc.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  })();
  return doc;
}

async function layOut(doc: Doc, view: RecordView, timeZone: string): Promise<void> {
  const r = view.record;
  const tt = new TableTime(timeZone, Date.parse(r.session.startedAt));
  await drawHeader(doc, view, timeZone);

  heading(doc, 'Trends', 200);
  const charts = chartsWithData(r);
  if (charts.length === 0) paragraph(doc, 'No telemetry to chart.', { font: FONT.italic, colour: INK.muted });
  else {
    drawTrendLegend(doc, r);
    for (const chart of charts) {
      drawChart(doc, r, chart, timeZone);
      await yieldToEventLoop(doc);
    }
  }

  await drawAlarms(doc, r, tt);
  await drawEvents(doc, r, tt);
  await drawCommands(doc, r, tt);
  await drawAnnotations(doc, r, tt);
  await drawCompleteness(doc, view);
  drawHash(doc, view);
  drawSignatures(doc, view, timeZone);
  await drawAmendments(doc, view, tt);
}

/** "page N of M", the console and the session on every page, once the page count is known. */
function drawFooters(doc: Doc, view: RecordView): void {
  const r = view.record;
  const range = doc.bufferedPageRange();
  const left = PAGE.margin;
  const label = pdfText(`Perfusion record \u00b7 console ${r.console.device} \u00b7 session ${r.session.sessionId} \u00b7 SHA-256 ${view.sha256.slice(0, 12)}\u2026`);
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i);
    const width = doc.page.width - 2 * PAGE.margin;
    const y = doc.page.height - PAGE.bottom + 18;
    // Text below the bottom margin would start a new page: lift the margin while writing the footer.
    const bottom = doc.page.margins.bottom;
    doc.page.margins.bottom = 0;
    doc.moveTo(left, y - 4).lineTo(left + width, y - 4).lineWidth(0.4).strokeColor(INK.rule).stroke();
    doc.font(FONT.regular).fontSize(7).fillColor(INK.muted).text(label, left, y, { width: width - 80, lineBreak: false });
    doc.font(FONT.bold).fontSize(7.5).fillColor(INK.text).text(`page ${i - range.start + 1} of ${range.count}`, left + width - 80, y, { width: 80, align: 'right', lineBreak: false });
    doc.page.margins.bottom = bottom;
  }
}

interface BufferedPages { _pageBuffer?: Array<{ content?: { buffer?: unknown } }> }

/**
 * Keeps a big record's memory near the size of its content. With bufferPages (needed for "page N of M"),
 * pdfkit holds every page's content stream as one small Buffer per drawing operator until the document ends:
 * about 220 bytes of heap each, ~100 MB for 2,000 alarm rows. When a page is finished its pieces are joined
 * into one Buffer (pdfkit joins them the same way when it writes the page). Reaches into pdfkit's page buffer:
 * test/unit/record/pdfText.test.ts fails if that changes shape.
 */
export function compactFinishedPages(doc: Doc): void {
  doc.on('pageAdded', () => {
    const pages = (doc as unknown as BufferedPages)._pageBuffer;
    const content = pages?.[pages.length - 2]?.content;
    if (content && Array.isArray(content.buffer) && content.buffer.length > 1) content.buffer = [Buffer.concat(content.buffer as Uint8Array[])];
  });
}

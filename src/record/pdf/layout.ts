/** Page geometry, fonts and colours of the record PDF, and the small layout helpers every section uses. */

export type Doc = PDFKit.PDFDocument;

/** A4 portrait, points. The bottom margin leaves room for the footer every page carries. */
export const PAGE = { size: 'A4' as const, margin: 40, bottom: 52 };

export const FONT = { regular: 'Helvetica', bold: 'Helvetica-Bold', italic: 'Helvetica-Oblique', mono: 'Courier' };

export const INK = { text: '#111111', muted: '#555555', rule: '#bbbbbb', grid: '#dddddd', headFill: '#e8e8e8', warn: '#b00020' };

/** Alarm priority colours (IEC 60601-1-8: high red, medium yellow, low cyan), darkened enough to print on white. */
export const PRIORITY_COLOUR: Record<string, string> = { HIGH: '#d7191c', MEDIUM: '#f2a900', LOW: '#00a8cc' };

export function priorityColour(priority: string): string {
  return PRIORITY_COLOUR[priority.toUpperCase()] ?? '#777777';
}

/** Light fills of the session states behind the trends (the same hues as the replay timeline). */
export const STATE_COLOUR: Record<string, string> = {
  IDLE: '#eeeeee', SELFTEST: '#dbe6f3', PRIMING: '#dbe6f3', PRIMED: '#dbe6f3', RUNNING: '#d5ecdd',
  PAUSED: '#fbe6ad', RINSEBACK: '#e6def0', ENDED: '#e6def0', FAULT: '#f6c6cb',
};

export function stateColour(state: string): string {
  return STATE_COLOUR[state] ?? '#eeeeee';
}

export function contentWidth(doc: Doc): number {
  return doc.page.width - doc.page.margins.left - doc.page.margins.right;
}

export function bottomY(doc: Doc): number {
  return doc.page.height - doc.page.margins.bottom;
}

/** Starts a new page unless `height` points are left below the cursor. */
export function ensureSpace(doc: Doc, height: number): void {
  if (doc.y + height > bottomY(doc)) {
    doc.addPage();
  }
}

/** A section title, kept with at least `keep` points of what follows it. */
export function heading(doc: Doc, title: string, keep = 60): void {
  ensureSpace(doc, 22 + keep);
  if (doc.y > doc.page.margins.top + 1) doc.y += 8;
  const x = doc.page.margins.left;
  doc.font(FONT.bold).fontSize(11).fillColor(INK.text).text(title, x, doc.y, { width: contentWidth(doc), lineBreak: false });
  doc.y += 2;
  doc.moveTo(x, doc.y).lineTo(x + contentWidth(doc), doc.y).lineWidth(0.6).strokeColor(INK.text).stroke();
  doc.y += 5;
}

/** A paragraph in the body font, wrapped to the content width. */
export function paragraph(doc: Doc, text: string, opts: { size?: number; font?: string; colour?: string } = {}): void {
  const size = opts.size ?? 8.5;
  doc.font(opts.font ?? FONT.regular).fontSize(size);
  const width = contentWidth(doc);
  ensureSpace(doc, doc.heightOfString(text, { width }) + 2);
  doc.fillColor(opts.colour ?? INK.text).text(text, doc.page.margins.left, doc.y, { width });
  doc.y += 2;
}

/** Thrown into the layout when the PDF's reader has gone (the stream was destroyed): stop drawing. */
export class RenderAborted extends Error {
  constructor() {
    super('record PDF stream closed before the layout finished');
  }
}

/** Lets timers and I/O run between slices of layout; stops the layout once nobody reads the PDF. */
export async function yieldToEventLoop(doc: Doc): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (doc.destroyed) throw new RenderAborted();
}

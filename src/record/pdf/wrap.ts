/**
 * Line breaking for the tables, from a per-font table of glyph widths. pdfkit's own wrapper measures every
 * string with kerning on each call; a record of thousands of alarm rows spent most of its time there (measured
 * twice per cell: to size the row, then to draw it). Widths here ignore kerning, which in the standard fonts
 * only narrows text, so a line measured here always fits where it is drawn.
 */
import type { Doc } from './layout.js';
import { WIN_ANSI_EXTRA } from './text.js';

export class TextMeasure {
  /** Per font: width of each character code at 1 pt. */
  private readonly widths = new Map<string, Map<number, number>>();
  private readonly lineHeights = new Map<string, number>();

  constructor(private readonly doc: Doc) {}

  /**
   * Width of `text` in `font` at `size` points. The first use of a font changes the document's current font and
   * size (pdfkit measures only with those): set both again before drawing.
   */
  width(text: string, font: string, size: number): number {
    const table = this.table(font);
    let w = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      let cw = table.get(c);
      if (cw === undefined) {
        cw = this.doc.font(font).fontSize(1000).widthOfString(text[i]) / 1000;
        table.set(c, cw);
      }
      w += cw;
    }
    return w * size;
  }

  private table(font: string): Map<number, number> {
    let t = this.widths.get(font);
    if (!t) {
      t = new Map();
      this.doc.font(font).fontSize(1000);
      for (let c = 0x20; c <= 0xff; c++) if (c < 0x7f || c >= 0xa0) t.set(c, this.doc.widthOfString(String.fromCharCode(c)) / 1000);
      for (const c of WIN_ANSI_EXTRA) t.set(c, this.doc.widthOfString(String.fromCharCode(c)) / 1000);
      this.widths.set(font, t);
    }
    return t;
  }

  /** Height of one line of `font` at `size`, with the font's own line gap, as pdfkit advances wrapped text. */
  lineHeight(font: string, size: number): number {
    let h = this.lineHeights.get(font);
    if (h === undefined) {
      h = this.doc.font(font).fontSize(1000).currentLineHeight(true) / 1000;
      this.lineHeights.set(font, h);
    }
    return h * size;
  }

  /** `text` broken into lines no wider than `maxWidth`: at spaces, and inside a word only when it alone is wider. */
  wrap(text: string, font: string, size: number, maxWidth: number): string[] {
    const lines: string[] = [];
    const space = this.width(' ', font, size);
    for (const para of text.split('\n')) {
      let line = '';
      let lineW = 0;
      for (const word of para.split(' ')) {
        const w = this.width(word, font, size);
        if (line !== '' && lineW + space + w <= maxWidth) {
          line += ` ${word}`;
          lineW += space + w;
          continue;
        }
        if (line !== '') lines.push(line);
        if (w <= maxWidth) {
          line = word;
          lineW = w;
          continue;
        }
        // A word wider than the column (a hash, a long id): cut it where it reaches the edge.
        line = '';
        lineW = 0;
        for (const ch of word) {
          const cw = this.width(ch, font, size);
          if (line !== '' && lineW + cw > maxWidth) {
            lines.push(line);
            line = '';
            lineW = 0;
          }
          line += ch;
          lineW += cw;
        }
      }
      lines.push(line);
    }
    return lines;
  }
}

const measures = new WeakMap<Doc, TextMeasure>();

/** The document's measurer (its width tables are filled as characters are first met). */
export function measureOf(doc: Doc): TextMeasure {
  let m = measures.get(doc);
  if (!m) {
    m = new TextMeasure(doc);
    measures.set(doc, m);
  }
  return m;
}

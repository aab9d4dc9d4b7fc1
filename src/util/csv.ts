/**
 * CSV cells for every CSV the gateway writes (session export over HTTP and the CLI, the replay screen's
 * telemetry.csv). Text in these files comes from consoles (event codes and texts, session ids), from people
 * (annotations, reasons) and from the gateway; a spreadsheet that opens the file runs any cell that looks like
 * a formula (CSV injection, OWASP). So every string cell is checked, not only the ones thought to be free text.
 *
 * The OWASP rule, widened to what spreadsheets actually skip before deciding a cell is a formula:
 * - a cell is formula-like when it starts with = + - @ TAB CR LF (or the fullwidth / small forms ＝ ＋ － ＠
 *   ﹦ ﹢ ﹣ ﹫, or U+2212 minus), also after leading whitespace, zero-width or other invisible characters
 *   (U+200B-U+200D, U+2060, U+FEFF/BOM, bidi marks, controls);
 * - or when a field separator or line break inside it (`,` `;` TAB CR LF) is followed, after such invisible
 *   characters or a quote, by one of those triggers: a reader that splits on `;` or ignores the quoting would
 *   start a new cell there.
 * A formula-like cell gets a leading `'` and is always quoted, double quotes doubled. Numbers are written as
 * numbers and never touched: a negative pressure such as -85.4 stays a number a spreadsheet can compute with.
 */

/** What a spreadsheet reads as the start of a formula (or of a DDE payload). */
const TRIGGER = '=+\\-@\\uFF1D\\uFF0B\\uFF0D\\uFF20\\uFE66\\uFE62\\uFE63\\uFE6B\\u2212';
/** Invisible or blank characters a reader may drop before it looks at the first character. */
const INVISIBLE = '\\s\\u0000-\\u001F\\u007F-\\u009F\\u00AD\\u034F\\u061C\\u115F\\u1160\\u17B4\\u17B5\\u180E'
  + '\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u206F\\u3164\\uFEFF\\uFFA0';

const LEADING = new RegExp(`^(?:[\\t\\r\\n]|[${INVISIBLE}]*[${TRIGGER}])`);
const AFTER_SEPARATOR = new RegExp(`[,;\\t\\r\\n][${INVISIBLE}"']*[${TRIGGER}]`);
const NEEDS_QUOTES = /[",;\r\n\t']/;

/** True when a spreadsheet could read this text (or a part after a separator) as a formula. */
export function isFormulaLike(s: string): boolean {
  return LEADING.test(s) || AFTER_SEPARATOR.test(s);
}

/**
 * One CSV field. Strings are neutralised (leading `'`, quoted) when formula-like and quoted when they hold a
 * separator, quote or line break; numbers are written as they are; null and undefined are an empty field.
 */
export function csvField(x: unknown): string {
  if (x === null || x === undefined) return '';
  if (typeof x === 'number' || typeof x === 'bigint') return String(x);
  if (typeof x === 'boolean') return x ? '1' : '0';
  const s = typeof x === 'string' ? x : String(x);
  if (isFormulaLike(s)) return `"'${s.replace(/"/g, '""')}"`;
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV record with its CRLF line end (RFC 4180). */
export function csvRecord(cells: readonly unknown[]): string {
  return cells.map(csvField).join(',') + '\r\n';
}

/**
 * An RFC 4180 reader for the CSV tests, written apart from src/util/csv.ts so the tests do not check the
 * writer against itself, and the oracle a CSV-injection test asserts with.
 */

/** Records of a CSV text: quoted fields may hold commas, doubled quotes and line breaks. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i++; continue; }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') { quoted = true; i++; continue; }
    if (c === ',') { row.push(field); field = ''; i++; continue; }
    if (c === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i += 2; continue; }
    if (c === '"') throw new Error(`stray quote at ${i}`);
    if (c === '\n' || c === '\r') throw new Error(`bare line break at ${i}: records end with CRLF`);
    field += c;
    i++;
  }
  if (quoted) throw new Error('unterminated quoted field');
  if (field !== '' || row.length > 0) { row.push(field); rows.push(row); }
  return rows;
}

/**
 * Why a parsed cell would run as a formula in a spreadsheet, or null: it starts with = + - @ TAB CR LF or a
 * fullwidth form, also after blanks and invisible characters, or a separator inside it is followed by one.
 */
export function formulaRisk(cell: string): string | null {
  if (/^[\t\r\n]/.test(cell)) return 'starts with a tab or line break';
  const visible = cell.replace(/^[\s\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]+/u, '');
  if (/^[=+\-@\uff1d\uff0b\uff0d\uff20]/.test(visible)) return `starts with ${JSON.stringify(visible.slice(0, 12))}`;
  const m = /[,;\t\r\n][\s\u200b-\u200d\u2060\ufeff"']*[=+\-@\uff1d\uff0b\uff0d\uff20]/.exec(cell);
  if (m && !cell.startsWith("'")) return `separator then trigger at ${m.index}`;
  return null;
}

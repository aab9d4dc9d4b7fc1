/**
 * Text for the record PDF: what the standard Helvetica/Courier fonts can show, and the record's times, numbers
 * and durations as the printed record states them.
 *
 * The PDF uses the 14 standard fonts (no font files on the gateway), which encode WinAnsi (cp1252) only. pdfkit
 * writes any other character as garbage bytes, so every string from the record goes through `pdfText` first:
 * what WinAnsi cannot show becomes '?', the rest is kept.
 */

import { formatLocal, isValidTimeZone, localParts, offsetText, type LocalParts } from '../time.js';

// Local times come from the one implementation the record's JSON uses too (src/record/time.ts).
export { formatLocal, localParts, offsetText, type LocalParts };

/** Code points above Latin-1 that WinAnsi (cp1252) has in its 0x80-0x9F range. */
export const WIN_ANSI_EXTRA: ReadonlySet<number> = new Set([
  0x0152, 0x0153, 0x0160, 0x0161, 0x0178, 0x017d, 0x017e, 0x0192, 0x02c6, 0x02dc, 0x2013, 0x2014, 0x2018, 0x2019,
  0x201a, 0x201c, 0x201d, 0x201e, 0x2020, 0x2021, 0x2022, 0x2026, 0x2030, 0x2039, 0x203a, 0x20ac, 0x2122,
]);

/** `s` with every character the standard fonts cannot show replaced by '?'; tabs become spaces, CR LF a newline. */
export function pdfText(s: string): string {
  let out = '';
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) { plain = false; break; }
  }
  if (plain) return s;
  for (const ch of s.replace(/\r\n?/g, '\n')) {
    const c = ch.codePointAt(0)!;
    if ((c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xff) || c === 0x0a || WIN_ANSI_EXTRA.has(c)) out += ch;
    else if (c === 0x09) out += ' ';
    else out += '?';
  }
  return out;
}

/** A time zone Intl knows, else UTC (the record's zone comes from the gateway's validated configuration). */
export function usableTimeZone(timeZone: string): string {
  return isValidTimeZone(timeZone) ? timeZone : 'UTC';
}

const two = (n: number) => String(n).padStart(2, '0');

/** `YYYY-MM-DD HH:MM:SS UTC`. */
export function formatUtc(ms: number): string {
  return `${new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/**
 * Compact local times for tables: `HH:MM:SS` on the session's first local day, with the date on other days and
 * the offset when it differs from the session start's (a daylight-saving change during the session).
 */
export class TableTime {
  readonly startDate: string;
  readonly startOffset: number;

  constructor(readonly timeZone: string, sessionStart: number) {
    const p = localParts(sessionStart, timeZone);
    this.startDate = `${p.y}-${two(p.mo)}-${two(p.d)}`;
    this.startOffset = p.offsetMin;
  }

  format(ms: number | null): string {
    if (ms === null || !Number.isFinite(ms)) return '-';
    const p = localParts(ms, this.timeZone);
    const date = `${p.y}-${two(p.mo)}-${two(p.d)}`;
    let s = `${two(p.h)}:${two(p.mi)}:${two(p.s)}`;
    if (date !== this.startDate) s = `${date} ${s}`;
    if (p.offsetMin !== this.startOffset) s += ` ${offsetText(p.offsetMin)}`;
    return s;
  }
}

/** `H:MM:SS` (hours unbounded). */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  return `${h}:${two(Math.floor((total % 3600) / 60))}:${two(total % 60)}`;
}

/** A short span: `850 ms`, `42 s`, `3 min 07 s`, `1 h 02 min`. */
export function formatSpan(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${two(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${two(Math.floor((s % 3600) / 60))} min`;
}

/** A reading or limit: numbers with at most `decimals` decimals (trailing zeros dropped), text as is, null '-'. */
export function formatValue(v: number | string | null | undefined, decimals = 3): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return '-';
  const s = v.toFixed(decimals);
  const t = s.includes('.') ? s.replace(/\.?0+$/, '') : s;
  return t === '-0' ? '0' : t;
}

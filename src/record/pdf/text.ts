/**
 * Text for the record PDF: what the standard Helvetica/Courier fonts can show, and the record's times, numbers
 * and durations as the printed record states them.
 *
 * The PDF uses the 14 standard fonts (no font files on the gateway), which encode WinAnsi (cp1252) only. pdfkit
 * writes any other character as garbage bytes, so every string from the record goes through `pdfText` first:
 * what WinAnsi cannot show becomes '?', the rest is kept.
 */

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

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** A time zone Intl knows, else UTC (the record's zone comes from the gateway's validated configuration). */
export function usableTimeZone(timeZone: string): string {
  try {
    formatter(timeZone);
    return timeZone;
  } catch {
    return 'UTC';
  }
}

export interface LocalParts { y: number; mo: number; d: number; h: number; mi: number; s: number; offsetMin: number }

/** Offsets by zone and quarter hour: zones change offset only on quarter hours, and formatToParts is slow. */
const offsets = new Map<string, Map<number, number>>();
const QUARTER_HOUR = 900_000;

/** The zone's offset from UTC at `ms`, minutes. */
function offsetAt(ms: number, timeZone: string): number {
  let byQuarter = offsets.get(timeZone);
  if (!byQuarter) offsets.set(timeZone, (byQuarter = new Map()));
  const q = Math.floor(ms / QUARTER_HOUR);
  let off = byQuarter.get(q);
  if (off === undefined) {
    const at = q * QUARTER_HOUR;
    const p: Record<string, number> = {};
    for (const part of formatter(timeZone).formatToParts(new Date(at))) {
      if (part.type !== 'literal') p[part.type] = Number(part.value);
    }
    const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour === 24 ? 0 : p.hour, p.minute, p.second);
    off = Math.round((asUtc - at) / 60_000);
    if (byQuarter.size > 10_000) byQuarter.clear();
    byQuarter.set(q, off);
  }
  return off;
}

/** Wall-clock fields of `ms` in `timeZone` and the zone's offset from UTC at that instant, minutes. */
export function localParts(ms: number, timeZone: string): LocalParts {
  const offsetMin = offsetAt(ms, timeZone);
  const d = new Date(Math.floor(ms / 1000) * 1000 + offsetMin * 60_000);
  return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), offsetMin };
}

const two = (n: number) => String(n).padStart(2, '0');

export function offsetText(offsetMin: number): string {
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return `${sign}${two(Math.floor(a / 60))}:${two(a % 60)}`;
}

/** `YYYY-MM-DD HH:MM:SS +HH:MM` in the site's zone (the format of RecordSignature.atLocal). */
export function formatLocal(ms: number, timeZone: string): string {
  const p = localParts(ms, timeZone);
  return `${p.y}-${two(p.mo)}-${two(p.d)} ${two(p.h)}:${two(p.mi)}:${two(p.s)} ${offsetText(p.offsetMin)}`;
}

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

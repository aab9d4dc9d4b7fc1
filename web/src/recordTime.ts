/**
 * Times on the perfusion record are shown in the site's time zone (the record's `site.timeZone`), not the
 * browser's: a record reads the same wherever it is opened. Same format as the server's `atLocal`
 * (`YYYY-MM-DD HH:MM:SS +HH:MM`).
 */
const formats = new Map<string, Intl.DateTimeFormat>();

function formatFor(timeZone: string): Intl.DateTimeFormat {
  let f = formats.get(timeZone);
  if (!f) {
    const opts: Intl.DateTimeFormatOptions = { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };
    try {
      f = new Intl.DateTimeFormat('en-CA', { ...opts, timeZone });
    } catch {
      f = new Intl.DateTimeFormat('en-CA', { ...opts, timeZone: 'UTC' });
    }
    formats.set(timeZone, f);
  }
  return f;
}

/** `2026-11-20 09:15:02 +01:00` for the instant `ms` in `timeZone` (UTC if the zone is unknown). */
export function zoned(ms: number, timeZone: string): string {
  if (!Number.isFinite(ms)) return '—';
  const p: Record<string, string> = {};
  for (const part of formatFor(timeZone).formatToParts(ms)) p[part.type] = part.value;
  const local = `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  const off = Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60_000);
  const a = Math.abs(off);
  return `${local} ${off < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/** `2026-11-20 08:15:02Z`: the UTC instant, compact. */
export function utc(ms: number): string {
  return Number.isFinite(ms) ? `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}Z` : '—';
}

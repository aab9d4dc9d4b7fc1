/**
 * Local time for the perfusion record: an instant shown in the site's IANA time zone with its UTC offset, so a
 * printed record reads in the ward's time and still names one instant (`2026-01-05 09:30:00 +01:00`).
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Throws a RangeError for a zone Intl does not know (the configuration checks it first: isValidTimeZone).
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether Intl knows this IANA zone name (`Europe/Berlin`, `UTC`); a misspelt or invented one is refused. */
export function isValidTimeZone(timeZone: string): boolean {
  if (timeZone.length === 0 || timeZone.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** The zone of this process (TZ, /etc/localtime), `UTC` when the runtime cannot tell. */
export function processTimeZone(): string {
  const zone = new Intl.DateTimeFormat().resolvedOptions().timeZone;
  return zone && isValidTimeZone(zone) ? zone : 'UTC';
}

const two = (n: number) => String(n).padStart(2, '0');

/** Wall-clock fields of an instant in a zone, and the zone's offset from UTC then (minutes). */
export interface LocalParts { y: number; mo: number; d: number; h: number; mi: number; s: number; offsetMin: number }

/**
 * Offsets by zone and quarter hour: zones change offset only on quarter hours, and formatToParts is slow (the
 * record PDF's chart axes ask for thousands of instants).
 */
const offsets = new Map<string, Map<number, number>>();
const QUARTER_HOUR = 900_000;

/** The zone's offset from UTC at `ms`, minutes. */
export function offsetAt(ms: number, timeZone: string): number {
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
    // The wall clock read as if it were UTC, minus the instant: the offset (whole minutes in every zone in use).
    const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour === 24 ? 0 : p.hour, p.minute, p.second);
    off = Math.round((asUtc - at) / 60_000);
    if (byQuarter.size > 10_000) byQuarter.clear();
    byQuarter.set(q, off);
  }
  return off;
}

/** Wall-clock fields of `ms` (to the second, truncated) in `timeZone`, with the zone's offset at that instant. */
export function localParts(ms: number, timeZone: string): LocalParts {
  const offsetMin = offsetAt(ms, timeZone);
  const d = new Date(Math.floor(ms / 1000) * 1000 + offsetMin * 60_000);
  return { y: d.getUTCFullYear(), mo: d.getUTCMonth() + 1, d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds(), offsetMin };
}

/** `+HH:MM` / `-HH:MM`. */
export function offsetText(offsetMin: number): string {
  const sign = offsetMin < 0 ? '-' : '+';
  const a = Math.abs(offsetMin);
  return `${sign}${two(Math.floor(a / 60))}:${two(a % 60)}`;
}

/**
 * `YYYY-MM-DD HH:MM:SS +HH:MM`: the instant `ms` (UTC epoch milliseconds) on the wall clock of `timeZone`, to the
 * second (truncated, as the UTC ISO form is read), with the zone's offset from UTC at that instant.
 */
export function formatLocal(ms: number, timeZone: string): string {
  const p = localParts(ms, timeZone);
  return `${String(p.y).padStart(4, '0')}-${two(p.mo)}-${two(p.d)} ${two(p.h)}:${two(p.mi)}:${two(p.s)} ${offsetText(p.offsetMin)}`;
}

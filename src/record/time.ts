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

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * `YYYY-MM-DD HH:MM:SS +HH:MM`: the instant `ms` (UTC epoch milliseconds) on the wall clock of `timeZone`, to the
 * second (truncated, as the UTC ISO form is read), with the zone's offset from UTC at that instant.
 */
export function formatLocal(ms: number, timeZone: string): string {
  const seconds = Math.floor(ms / 1000) * 1000;
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(seconds)) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const { year, month, day, hour, minute, second } = parts;
  // The wall clock read as if it were UTC, minus the instant: the zone's offset (whole minutes in every zone in use).
  const offsetMin = Math.round((Date.UTC(year, month - 1, day, hour, minute, second) - seconds) / 60_000);
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  return `${pad(year, 4)}-${pad(month)}-${pad(day)} ${pad(hour)}:${pad(minute)}:${pad(second)} ${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/**
 * Telemetry history: from InfluxDB when it is configured, from the journal otherwise, so
 * the gateway is complete on one machine. Should InfluxDB fail to answer, the journal (which holds
 * the last N days anyway) answers instead, and the result says so in `source`.
 */
import { escape, type InfluxDB } from 'influx';
import { createInfluxClient, type InfluxTarget } from './influxConfig.js';
import { channelField } from './influxLines.js';
import type { Journal } from './journal.js';
import { silentLog, type HistoryPoint, type HistoryResult, type StorageLog, type TelemetryQuery } from './types.js';
import type { ChannelValues } from '../protocol/types.js';

const DEFAULT_LIMIT = 50_000;
const NOT_CHANNELS = new Set(['time', 'device', 'session', 'seq', 'faults']);

interface RawSeries {
  columns: string[];
  values: unknown[][];
}

export class HistoryService {
  private readonly influx: { client: InfluxDB; database: string } | null;
  private readonly log: StorageLog;

  constructor(private readonly opts: { journal: Journal; influx?: InfluxTarget | null; log?: StorageLog }) {
    this.influx = opts.influx ? createInfluxClient(opts.influx) : null;
    this.log = opts.log ?? silentLog;
  }

  get source(): 'influx' | 'journal' {
    return this.influx ? 'influx' : 'journal';
  }

  async telemetry(deviceId: string, query: TelemetryQuery): Promise<HistoryResult> {
    const q = { ...query, limit: query.limit ?? DEFAULT_LIMIT };
    if (this.influx) {
      try {
        return await this.fromInflux(this.influx, deviceId, q);
      } catch (err) {
        this.log.warn({ err: String(err), deviceId }, 'history: InfluxDB query failed; answering from the journal');
      }
    }
    return { ...(await this.opts.journal.telemetry(deviceId, q)), source: 'journal' };
  }

  private async fromInflux(
    influx: { client: InfluxDB; database: string }, deviceId: string, q: TelemetryQuery & { limit: number },
  ): Promise<HistoryResult> {
    const named = q.channels && q.channels.length > 0 ? q.channels : null;
    const ident = (key: string) => escape.quoted(channelField(key));
    const where = `WHERE "device" = $device AND time >= ${Math.trunc(q.from)}ms AND time < ${Math.trunc(q.to)}ms`;
    const sql = q.everyMs !== undefined
      ? `SELECT ${named ? named.map((c) => `mean(${ident(c)}) AS ${ident(c)}`).join(', ') : 'mean(*)'} FROM "telemetry"
         ${where} GROUP BY time(${Math.trunc(q.everyMs)}ms) fill(none) LIMIT ${q.limit + 1}`
      : `SELECT ${named ? ['"seq"', ...named.map(ident), '"faults"'].join(', ') : '*'} FROM "telemetry"
         ${where} ORDER BY time ASC LIMIT ${q.limit + 1}`;
    const body = (await influx.client.queryRaw(sql, {
      database: influx.database, precision: 'ms', placeholders: { device: deviceId },
    })) as { results?: Array<{ series?: RawSeries[]; error?: string }> };
    const result = body.results?.[0];
    if (result?.error) throw new Error(result.error);
    const series = result?.series?.[0];
    const samples: HistoryPoint[] = [];
    const found = new Set<string>();
    if (series) {
      // Columns back to channel keys: `mean_QB` (wildcard mean) and `ch_seq` (reserved name) included.
      const keys = series.columns.map((col) => {
        const name = q.everyMs !== undefined && !named ? col.replace(/^mean_/, '') : col;
        if (NOT_CHANNELS.has(name)) return null;
        const m = /^ch_(.+)$/.exec(name);
        return m && NOT_CHANNELS.has(m[1]) ? m[1] : name;
      });
      const faultsAt = series.columns.indexOf('faults');
      for (const row of series.values) {
        const v: ChannelValues = {};
        const faults = faultsAt >= 0 && typeof row[faultsAt] === 'string' ? (row[faultsAt] as string).split(',') : [];
        keys.forEach((key, i) => {
          if (key === null) return;
          const value = row[i];
          if (typeof value !== 'number') return;
          v[key] = value;
          found.add(key);
        });
        // A fault writes no field, only its key in `faults` (docs/storage.md): null again here.
        for (const key of faults) {
          if (q.everyMs === undefined && (!named || named.includes(key))) {
            v[key] = null;
            found.add(key);
          }
        }
        samples.push({ t: row[0] as number, v });
      }
    }
    const truncated = samples.length > q.limit;
    if (truncated) samples.length = q.limit;
    return { samples, channels: named ?? [...found].sort(), truncated, source: 'influx' };
  }
}

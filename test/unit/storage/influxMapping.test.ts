import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InfluxWriteError, postLines, redact, resolveInfluxTarget } from '../../../src/storage/influxConfig.js';
import { channelField, LineReader, parseFields, scanFields } from '../../../src/storage/influxLines.js';
import { encodeValues } from '../../../src/storage/journalRows.js';
import { Journal } from '../../../src/storage/journal.js';
import { alarmTransition, deviceEvent, sample, stateChange, T0, tempDir } from './fixtures.js';

describe('resolveInfluxTarget', () => {
  it('takes the database from the last path segment and keeps a proxy prefix', () => {
    const r = resolveInfluxTarget({ url: 'https://influx.example:8443/proxy/v1/trial_db' });
    expect(r.database).toBe('trial_db');
    expect(r.options).toMatchObject({ host: 'influx.example', port: 8443, protocol: 'https', path: '/proxy/v1' });
    expect(r.writeUrl).toBe('https://influx.example:8443/proxy/v1/write?db=trial_db&precision=ns');
    expect(resolveInfluxTarget({ url: 'http://127.0.0.1/msc' }).options).toMatchObject({ port: 8086, path: '' });
    expect(resolveInfluxTarget({ url: 'http://127.0.0.1/msc' }).writeUrl).toBe('http://127.0.0.1:8086/write?db=msc&precision=ns');
  });

  it('uses user:pass as Basic auth and redacts it from what it logs', () => {
    const r = resolveInfluxTarget({ url: 'http://gw:s%40cret@db:8086/msc' });
    expect(r.options).toMatchObject({ username: 'gw', password: 's@cret' });
    expect(r.writeUrl).toBe('http://db:8086/write?db=msc&precision=ns');
    expect(r.redacted).toBe('http://***@db:8086/msc');
    expect(redact('http://a:b@h/x')).not.toContain('b@');
  });

  it('rejects a URL without a database or with another scheme, naming the problem', () => {
    expect(() => resolveInfluxTarget({ url: 'http://db:8086/' })).toThrow(/no database/);
    expect(() => resolveInfluxTarget({ url: 'udp://db:8089/x' })).toThrow(/http/);
    expect(() => resolveInfluxTarget({ url: 'not a url' })).toThrow(/not a URL/);
  });
});

describe('postLines on the wire', () => {
  let server: ReturnType<typeof createServer>;
  let status = 204;
  const seen: Array<{ url: string; headers: IncomingHttpHeaders; body: string }> = [];
  beforeEach(async () => {
    seen.length = 0;
    status = 204;
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, body });
        res.writeHead(status, { 'content-type': 'application/json' }).end(status === 204 ? '' : '{"error":"field type conflict"}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterEach(() => new Promise<void>((r) => server.close(() => r())));
  const port = () => (server.address() as AddressInfo).port;

  it('sends Authorization: Token when a token is configured, to /write with ns precision', async () => {
    await postLines(resolveInfluxTarget({ url: `http://127.0.0.1:${port()}/msc`, token: 'tok123' }), `m x=1 ${T0}`, 5_000);
    expect(seen[0]).toMatchObject({ url: '/write?db=msc&precision=ns', body: `m x=1 ${T0}` });
    expect(seen[0].headers.authorization).toBe('Token tok123');
  });

  it('sends Basic auth from user:pass in the URL, and none without', async () => {
    await postLines(resolveInfluxTarget({ url: `http://gw:pw@127.0.0.1:${port()}/msc` }), 'm x=1 1', 5_000);
    await postLines(resolveInfluxTarget({ url: `http://127.0.0.1:${port()}/msc` }), 'm x=1 1', 5_000);
    expect(seen[0].headers.authorization).toBe(`Basic ${Buffer.from('gw:pw').toString('base64')}`);
    expect(seen[1].headers.authorization).toBeUndefined();
  });

  it('rejects a non-2xx answer with its status and InfluxDB\'s reason', async () => {
    status = 400;
    const err = await postLines(resolveInfluxTarget({ url: `http://127.0.0.1:${port()}/msc` }), 'm x=1 1', 5_000).catch((e) => e);
    expect(err).toBeInstanceOf(InfluxWriteError);
    expect(err.status).toBe(400);
    expect(err.message).toContain('field type conflict');
  });
});

describe('LineReader', () => {
  let tmp: ReturnType<typeof tempDir>;
  let journal: Journal;
  beforeEach(async () => {
    tmp = tempDir();
    journal = new Journal({ dataDir: tmp.dir });
    await journal.start();
  });
  afterEach(async () => {
    await journal.stop();
    tmp.cleanup();
  });

  it('writes each journal stream as its measurement, with explicit timestamps and fixed field types', async () => {
    journal.appendTelemetry(sample(1, { QB: 150, PA: -85.4, PV: null, seq: 3, 'NEW CH': 1 }, { sessionId: null, deviceId: 'MSC 1' }));
    journal.appendTelemetry(sample(2, { QB: 150.5 }));
    journal.appendState(stateChange(3, 'RUNNING', { previous: 'PRIMED' }));
    journal.appendEvent(deviceEvent(4, 'AIR_DETECTED', { text: 'Air "detected"\nin line' }));
    journal.appendAlarm(alarmTransition(T0 + 500));
    await journal.committed();
    const reader = new LineReader();
    const db = journal.database()!;
    const tel = reader.read(db, 'telemetry', 0, 10);
    expect(tel.body.split('\n')).toEqual([
      `telemetry,device=MSC\\ 1 seq=1i,QB=150,PA=-85.4,ch_seq=3,NEW\\ CH=1,faults="PV" ${T0 + 40}000001`,
      `telemetry,device=MSC-0001,session=S-1 seq=2i,QB=150.5 ${T0 + 80}000002`,
    ]);
    expect(tel).toMatchObject({ lines: 2, lastId: 2 });
    expect(reader.read(db, 'state', 0, 10).body).toBe(
      `state,device=MSC-0001 seq=3i,state="RUNNING",previous="PRIMED",session="S-1" ${T0 + 120}000003`,
    );
    expect(reader.read(db, 'event', 0, 10).body).toBe(
      `device_event,device=MSC-0001,code=AIR_DETECTED,prio=H seq=4i,active=true,text="Air \\"detected\\" in line",session="S-1" ${T0 + 160}000004`,
    );
    expect(reader.read(db, 'alarm', 0, 10).body).toBe(
      'alarm,device=MSC-0001,rule=PV_HIGH,kind=raise alarm_id="MSC-0001:PV_HIGH",source="process",priority="HIGH",'
        + `from="NORMAL",to="UNACK",active=true,message="Venous pressure high",value="312.5",limit="300",session="S-1" ${T0 + 500}000001`,
    );
    expect(reader.read(db, 'telemetry', 2, 10)).toEqual({ body: '', lines: 0, lastId: 2 });
    expect(reader.read(db, 'telemetry', 0, 1)).toMatchObject({ lines: 1, lastId: 1 });
  });

  it('the fast text scan of journal values gives the same fields as parsing them, or defers to parsing', () => {
    // Markers instead of escaping, so the fields can be read back whatever the key holds.
    const mark = (k: string) => `\u0001${k}\u0002`;
    const fieldsOf = (s: string) => {
      const [body, faults] = s.split(',faults=');
      const pairs = body.split('\u0001').slice(1).map((p) => p.split('\u0002') as [string, string]);
      return { pairs: pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), faults: faults ?? null };
    };
    const key = fc.oneof(fc.constantFrom('QB', 'PV', 'TR', 'seq', 'A B', 'x=y', 'a,b', '1', ''), fc.string({ maxLength: 6 }));
    const value = fc.oneof(fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.constantFrom(0.1, -85.4, 1e21, -0));
    fc.assert(fc.property(fc.dictionary(key, value, { maxKeys: 20 }), (v) => {
      const text = encodeValues(v);
      const scanned = scanFields(text, mark);
      const parsed = parseFields(text, mark);
      if (scanned !== null) {
        const a = fieldsOf(scanned);
        const b = fieldsOf(parsed);
        expect(a.pairs).toEqual(b.pairs);
        expect(a.faults === null ? null : new Set(a.faults.slice(1, -1).split(','))).toEqual(
          b.faults === null ? null : new Set(b.faults.slice(1, -1).split(',')),
        );
      }
      // Every finite number becomes a field spelled as JSON spells it; null never does.
      for (const [k, x] of Object.entries(v)) {
        if (k !== '' && typeof x === 'number') expect(parsed).toContain(`${mark(k)}${JSON.stringify(x)}`);
      }
    }), { numRuns: 500 });
    expect(scanFields('{"QB":150,"PV":null}', mark)).toBe('\u0001QB\u0002150,faults="PV"');
    expect(scanFields('{"Q\\"B":1}', mark)).toBeNull();
    expect(scanFields('{"QB":"150"}', mark)).toBeNull();
  });

  it('renames a channel whose key would shadow a reserved field or tag', () => {
    expect(channelField('QB')).toBe('QB');
    expect(['seq', 'faults', 'time', 'device', 'session'].map(channelField)).toEqual(
      ['ch_seq', 'ch_faults', 'ch_time', 'ch_device', 'ch_session'],
    );
  });
});

/**
 * The Grafana dashboards against real data: a gateway fed by two simulated consoles over a real
 * mosquitto forwards to a real influxd; then every panel target, every annotation query and every template
 * variable query of dashboards/*.json runs through influxd's /query with `$device`, `$session`, `$timeFilter`
 * and `$__interval` filled in the way Grafana fills them, and each must return at least one row.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../device-sim/src/index.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { startInfluxd, type InfluxdHandle } from '../helpers/influxd.js';
import { startMosquitto, type MosquittoBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/waitFor.js';

const DASHBOARDS = resolve(import.meta.dirname, '../../dashboards');
const DB = 'msc_grafana';
const DEVICES = ['MSC-G001', 'MSC-G002'];

let influxd: InfluxdHandle;
let broker: MosquittoBroker;
let sim: Simulator;
let gw: TestGateway;
let startedAt: number;

interface Query { where: string; query: string }

/** Every InfluxQL query a dashboard runs: panel targets, annotations, template variables. */
function queriesOf(dash: any): { panels: Query[]; annotations: Query[]; variables: Array<{ name: string; query: string; multi: boolean }> } {
  const panels: Query[] = [];
  for (const p of dash.panels ?? []) for (const t of p.targets ?? []) panels.push({ where: `panel "${p.title}" ${t.refId}`, query: t.query });
  const annotations = (dash.annotations?.list ?? []).map((a: any) => ({ where: `annotation "${a.name}"`, query: a.query ?? a.target?.query }));
  const variables = (dash.templating?.list ?? []).map((v: any) => ({ name: v.name, query: v.query, multi: !!(v.multi || v.includeAll) }));
  return { panels, annotations, variables };
}

/** Grafana's regex escaping of a template value used inside /…/ (its influx datasource, interpolateQueryExpr). */
const regexEscape = (s: string) => s.replace(/[\\^$*+?.()|[\]{}\/-]/g, '\\$&');

function fill(q: string, vars: Record<string, string>, from: number, to: number): string {
  let out = q.replaceAll('$timeFilter', `time >= ${from}ms and time <= ${to}ms`).replaceAll('$__interval', '1s');
  for (const [k, v] of Object.entries(vars)) out = out.replaceAll(`$${k}`, v);
  return out;
}

async function rows(q: string): Promise<unknown[][]> {
  const body = await influxd.query(q, DB);
  const result = body.results?.[0];
  if (result?.error) throw new Error(`${result.error}: ${q}`);
  return (result?.series ?? []).flatMap((s: { values?: unknown[][] }) => s.values ?? []);
}

beforeAll(async () => {
  startedAt = Date.now();
  [influxd, broker] = await Promise.all([startInfluxd(), startMosquitto()]);
  gw = await startTestGateway({
    mqtt: { url: broker.url, clientId: `gw-grafana-${process.pid}` },
    influx: { url: `${influxd.url}/${DB}`, batchMs: 100 },
  });
  sim = await startSimulator({
    transport: 'mqtt', mqttUrl: broker.url, deviceIds: DEVICES, rate: 10, autoRun: true,
    phases: { selftestMs: 200, primingMs: 300, rinsebackMs: 300 },
  });
  const dev = DEVICES[0];
  await waitFor(async () => {
    const list = (await gw.get('/api/devices')).body.devices as Array<{ id: string; state: string }>;
    return DEVICES.every((id) => list.find((d) => d.id === id)?.state === 'RUNNING');
  }, { timeoutMs: 20_000, message: 'both consoles RUNNING' });
  // An alarm (air in line: the console pauses itself), its acknowledgement, and an annotation.
  sim.apply({ action: 'air_in_line', device: 0, duration: '1s' } as never);
  const alarm = await waitFor(async () => ((await gw.get(`/api/alarms?device=${dev}`)).body.alarms as any[])
    .find((a) => a.rule === 'AIR_IN_LINE'), { timeoutMs: 15_000, message: 'AIR_IN_LINE alarm' });
  expect((await gw.post(`/api/alarms/${encodeURIComponent(alarm.id)}/ack`, {})).status).toBe(200);
  expect((await gw.post(`/api/devices/${dev}/annotations`, { kind: 'note', text: 'line checked, air cleared' })).status).toBe(201);
  // Fleet status points at a few distinct seconds (the writer's own period is 10 s).
  for (let i = 0; i < 3; i++) {
    const before = Date.now();
    await gw.gateway.fleetStatus!.tick();
    await waitFor(() => Date.now() >= before + 1_000, { intervalMs: 50 });
  }
  await gw.gateway.fleetStatus!.tick();
  const fwd = gw.gateway.forwarder!;
  await waitFor(async () => fwd.status().lines === 0 && (await rows(`SELECT count("message") FROM "alarm"`)).length > 0
    && (await rows(`SELECT count("text") FROM "annotation"`)).length > 0, { timeoutMs: 30_000, message: 'InfluxDB caught up' });
}, 110_000);

afterAll(async () => {
  await sim?.stop();
  await gw?.stop();
  await Promise.all([broker?.stop(), influxd?.dispose()]);
});

describe('Grafana dashboards', () => {
  const files = readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json'));

  it('has a session view and a fleet view, each with InfluxQL on the provisioned datasource', () => {
    expect(files.sort()).toEqual(['msc-fleet.json', 'msc-session.json']);
    for (const f of files) {
      const d = JSON.parse(readFileSync(join(DASHBOARDS, f), 'utf8'));
      for (const p of d.panels) for (const t of p.targets) expect(t).toMatchObject({ rawQuery: true, datasource: { uid: 'msc-influx' } });
    }
    const session = JSON.parse(readFileSync(join(DASHBOARDS, 'msc-session.json'), 'utf8'));
    expect(session.templating.list.map((v: any) => v.name)).toEqual(['device', 'session']);
    expect(session.annotations.list.length).toBeGreaterThanOrEqual(2);
  });

  for (const file of ['msc-session.json', 'msc-fleet.json']) {
    it(`${file}: every variable, panel and annotation query returns data`, async () => {
      const dash = JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8'));
      const { panels, annotations, variables } = queriesOf(dash);
      const from = startedAt - 60_000;
      const to = Date.now() + 60_000;
      // Variables in order, each query filled with those before it (Grafana's chained variables).
      const vars: Record<string, string> = {};
      for (const v of variables) {
        const values = (await rows(fill(v.query, vars, from, to))).map((r) => String(r[1]));
        expect(values.length, `variable ${v.name}: ${v.query}`).toBeGreaterThan(0);
        if (v.name === 'device') expect(values).toEqual(expect.arrayContaining(DEVICES));
        // A single pick is the first console (it had the alarm); multi/All is the regex alternation Grafana builds.
        const picked = v.name === 'device' && !v.multi ? [DEVICES[0]] : v.multi ? values : [values[0]];
        vars[v.name] = picked.length === 1 ? regexEscape(picked[0]) : `(${picked.map(regexEscape).join('|')})`;
      }
      const empty: string[] = [];
      for (const q of [...panels, ...annotations]) {
        expect(q.query, q.where).toBeTruthy();
        const filled = fill(q.query, vars, from, to);
        expect(filled, q.where).not.toMatch(/\$\w/);
        if ((await rows(filled)).length === 0) empty.push(`${q.where}: ${filled}`);
      }
      expect(empty).toEqual([]);
    });
  }
});

/**
 * SnapshotPump on an injected clock, with real LiveClients over stub sockets: how much it does per event-loop
 * turn, how it shares the turns between clients, and how it waits for a client's socket to drain.
 */
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { LiveClient } from '../../../src/live/liveClient.js';
import { SnapshotPump, type SnapshotLimits } from '../../../src/live/snapshotPump.js';
import type { DeviceSnapshot } from '../../../src/model/types.js';

type Msg = Record<string, any>;
const IDS = Array.from({ length: 10 }, (_, i) => `MSC-${String(i).padStart(4, '0')}`);
const FLOW = { softBytes: 1000, lowBytes: 100, hardBytes: 10_000, hardMs: 1000 };

function setup(limits: Partial<SnapshotLimits> = {}) {
  let clock = 0;
  const snapshotOf = (id: string) => ({ id, state: 'RUNNING', values: { QB: { v: 150, t: 1 } } }) as unknown as DeviceSnapshot;
  // Reading a device costs 1 ms of the injected clock.
  const devices = { get: (id: string) => { clock += 1; return IDS.includes(id) ? snapshotOf(id) : undefined; }, list: () => IDS.map(snapshotOf) };
  const pump = new SnapshotPump({
    devices, alarmsOf: (id) => (id === 'MSC-0001' ? [{ rule: 'PV_HIGH' } as never] : []),
    limits: { sliceMs: 4, partBytes: 1_000_000, backlogBytes: 500, ...limits }, clock: () => clock,
  });
  const stats = { conflations: 0, dropped: 0, sent: 0 };
  const client = (id: number) => {
    const sent: Msg[] = [];
    const ws = { readyState: 1, OPEN: 1, bufferedAmount: 0, send: (m: unknown) => sent.push(JSON.parse(String(m))) };
    const c = new LiveClient(ws as unknown as WebSocket, id, FLOW, stats);
    c.principal = { user: `u${id}`, role: 'viewer' };
    c.subscribedAll = true;
    return { c, ws, sent };
  };
  return { pump, client };
}

const turn = () => new Promise<void>((r) => setImmediate(r));
const ids = (sent: Msg[]) => sent.flatMap((m) => m.devices.map((d: Msg) => d.id));

describe('SnapshotPump', () => {
  it('works at most sliceMs per turn, in parts, the last with more:false, each device with its alarms', async () => {
    const { pump, client } = setup();
    const a = client(1);
    pump.enqueue(a.c, IDS);
    expect(a.sent).toEqual([]);
    await turn();
    expect(ids(a.sent)).toEqual(IDS.slice(0, 4));
    expect(a.sent.at(-1)!.more).toBe(true);
    while (pump.queued(a.c) > 0) await turn();
    expect(ids(a.sent)).toEqual(IDS);
    expect(a.sent.map((m) => m.more)).toEqual([true, true, false]);
    expect(a.sent[0]!.devices[1]).toMatchObject({ id: 'MSC-0001', alarms: [{ rule: 'PV_HIGH' }] });
    expect(pump.stats).toMatchObject({ parts: 3, devices: 10, slices: 3 });
  });

  it('closes a part at partBytes', async () => {
    const { pump, client } = setup({ partBytes: 1, sliceMs: 1000 });
    const a = client(1);
    pump.enqueue(a.c, IDS.slice(0, 3));
    await turn();
    expect(a.sent.map((m) => m.devices.length)).toEqual([1, 1, 1]);
    expect(a.sent.map((m) => m.more)).toEqual([true, true, false]);
  });

  it('shares each turn between clients, whatever their number', async () => {
    const { pump, client } = setup({ partBytes: 1 });
    const a = client(1);
    const b = client(2);
    pump.enqueue(a.c, IDS);
    pump.enqueue(b.c, IDS);
    await turn();
    // 4 ms: one device each, twice, then the turn is over.
    expect([ids(a.sent), ids(b.sent)]).toEqual([IDS.slice(0, 2), IDS.slice(0, 2)]);
  });

  it('answers each subscribe in turn; an empty or unknown selection still gets its final part', async () => {
    const { pump, client } = setup({ sliceMs: 1000 });
    const a = client(1);
    pump.enqueue(a.c, ['MSC-0002']);
    pump.enqueue(a.c, []);
    pump.enqueue(a.c, ['MSC-NONE']);
    await turn();
    expect(a.sent).toEqual([
      { type: 'snapshot', devices: [expect.objectContaining({ id: 'MSC-0002' })], more: false },
      { type: 'snapshot', devices: [], more: false },
      { type: 'snapshot', devices: [], more: false },
    ]);
  });

  it('sends nothing more to a client whose socket backlog is at the bound until it drains and the pump is kicked', async () => {
    const { pump, client } = setup({ sliceMs: 1000, partBytes: 1 });
    const slow = client(1);
    const other = client(2);
    slow.ws.bufferedAmount = 500;
    pump.enqueue(slow.c, IDS);
    pump.enqueue(other.c, IDS);
    await turn();
    expect(slow.sent).toEqual([]);
    expect(ids(other.sent)).toEqual(IDS);
    await turn();
    expect(pump.clientsWaiting).toBe(1);
    slow.ws.bufferedAmount = 499;
    pump.kick();
    await turn();
    expect(ids(slow.sent)).toEqual(IDS);
    expect(pump.clientsWaiting).toBe(0);
  });

  it('skips devices unsubscribed since, and forgets a closed client', async () => {
    const { pump, client } = setup({ sliceMs: 1000 });
    const a = client(1);
    a.c.subscribedAll = false;
    for (const id of IDS.slice(0, 3)) a.c.devices.add(id);
    pump.enqueue(a.c, IDS.slice(0, 3));
    a.c.devices.delete('MSC-0001');
    const gone = client(2);
    pump.enqueue(gone.c, IDS);
    gone.ws.readyState = 3;
    await turn();
    expect(ids(a.sent)).toEqual(['MSC-0000', 'MSC-0002']);
    expect(gone.sent).toEqual([]);
    expect(pump.clientsWaiting).toBe(0);
  });
});

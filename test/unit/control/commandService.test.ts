import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { EventBus } from '../../../src/bus.js';
import { CommandService, type CommandResponse } from '../../../src/control/commandService.js';
import type { AckCondition } from '../../../src/control/ackGuard.js';
import { createLogger, silentLogger } from '../../../src/log.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import type { DeviceLink } from '../../../src/model/types.js';
import { CMD_ID_RE } from '../../../src/protocol/commands.js';
import type { AckResult, Command } from '../../../src/protocol/types.js';
import { helloFrame } from '../../helpers/hello.js';
import { metricsTextOf } from '../../../src/metrics.js';

const DEV = 'MSC-0001';
const alice = { user: 'alice', role: 'operator' };

/** A console stand-in: records what it is sent and answers per the test's script. */
class FakeConsole implements DeviceLink {
  kind = 'serial' as const;
  source = '/dev/ttyFAKE';
  sent: Command[] = [];
  /** Per try (1-based): the answer, or null for silence. */
  answer: (cmd: Command, attempt: number) => { result: AckResult; detail: string } | null = () => ({ result: 'OK', detail: '' });
  failSend: (attempt: number) => boolean = () => false;
  constructor(private readonly hub: DeviceHub) {}
  async send(cmd: Command): Promise<void> {
    this.sent.push(cmd);
    const attempt = this.sent.filter((c) => c.cmdId === cmd.cmdId).length;
    if (this.failSend(attempt)) throw new Error('port closed');
    const a = this.answer(cmd, attempt);
    if (a) queueMicrotask(() => void this.ack(cmd.cmdId, a.result, a.detail));
  }
  ack(cmdId: string, result: AckResult, detail = ''): Promise<void> {
    return this.hub.ingest(DEV, [{ type: 'ACK', cmdId, result, detail }], this);
  }
}

let db: Database.Database;
let audit: AuditLog;
let bus: EventBus;
let hub: DeviceHub;
let dev: FakeConsole;
let svc: CommandService;
/** What the service reported to the alarm engine (ACK_UNEXPECTED). */
let conditions: AckCondition[];
let seq = 1;

async function feed(state: string, setpoints: Record<string, number> = { SQB: 150, SQP: 30, STR: 37, SHEP: 5 }): Promise<void> {
  const t = Date.now();
  await hub.ingest(DEV, [
    { type: 'S', seq: seq++, t, state: state as 'RUNNING', sessionId: state === 'RUNNING' || state === 'PAUSED' ? 'S-20260105-01' : null },
    { type: 'T', seq: seq++, t, v: { QB: 150, ...setpoints } },
  ], dev);
}

const actions = () => audit.query().map((r) => `${r.action}:${r.outcome}`);
/** The service's default settle time: a first ACK is reported this long after it came. */
const SETTLE_MS = 200;
/** execute() with the fake clock run past the settle time (a refusal ignores it). */
async function execute(...args: Parameters<CommandService['execute']>): Promise<CommandResponse> {
  const p = svc.execute(...args);
  await vi.advanceTimersByTimeAsync(SETTLE_MS);
  return p;
}

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  db = new Database(':memory:');
  audit = new AuditLog({ db });
  audit.start();
  bus = new EventBus();
  hub = new DeviceHub({ bus, logger: silentLogger() });
  dev = new FakeConsole(hub);
  await hub.ingest(DEV, [helloFrame(DEV)], dev);
  conditions = [];
  svc = new CommandService({ bus, hub, audit, logger: silentLogger(), onCondition: (c) => conditions.push(c) });
  svc.start();
  await feed('RUNNING');
});
afterEach(() => {
  svc.stop();
  db.close();
  vi.useRealTimers();
});

describe('CommandService round trips', () => {
  it('sends once and reports the device ACK; audits requested, sent, acknowledged', async () => {
    const res = await execute(DEV, { verb: 'SET', args: ['QB', 160], reason: 'raise flow' }, alice);
    expect(res).toEqual({ ok: true, cmdId: expect.stringMatching(CMD_ID_RE), result: 'OK', detail: '', tries: 1 });
    expect(dev.sent).toEqual([{ cmdId: res.ok && res.cmdId, verb: 'SET', args: ['QB', 160] }]);
    expect(actions()).toEqual(['command.requested:accepted', 'command.sent:sent', 'command.acknowledged:OK']);
    const [req, sent, ack] = audit.query();
    expect(req).toMatchObject({ user: 'alice', role: 'operator', device: DEV, session: 'S-20260105-01' });
    expect(req.detail).toMatchObject({ verb: 'SET', args: ['QB', 160], reason: 'raise flow', previous: 150, state: 'RUNNING' });
    expect(sent.detail).toMatchObject({ try: 1, transport: 'serial', source: '/dev/ttyFAKE' });
    expect(ack.detail).toMatchObject({ reply: '', tries: 1 });
  });

  it('reports REJ and ERR with the device reply', async () => {
    dev.answer = () => ({ result: 'REJ', detail: 'door open' });
    expect(await execute(DEV, { verb: 'PAUSE', args: [] }, alice)).toMatchObject({ ok: true, result: 'REJ', detail: 'door open' });
    dev.answer = () => ({ result: 'ERR', detail: 'bad frame' });
    expect(await execute(DEV, { verb: 'SILENCE', args: [] }, alice)).toMatchObject({ ok: true, result: 'ERR', detail: 'bad frame' });
    expect(actions()).toContain('command.rejected:REJ');
    expect(actions()).toContain('command.error:ERR');
    expect(audit.query().find((r) => r.action === 'command.rejected')?.detail.reply).toBe('door open');
  });

  it('re-sends the SAME cmd_id every 500 ms, 1 + 3 tries, then TIMEOUT', async () => {
    dev.answer = () => null;
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    expect(dev.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(499);
    expect(dev.sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(dev.sent).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(dev.sent).toHaveLength(4);
    let done = false;
    void p.then(() => { done = true; });
    await vi.advanceTimersByTimeAsync(499);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const res = await p;
    expect(res).toMatchObject({ ok: true, result: 'TIMEOUT', tries: 4 });
    expect(dev.sent).toHaveLength(4);
    expect(new Set(dev.sent.map((c) => c.cmdId)).size).toBe(1);
    expect(actions()).toEqual([
      'command.requested:accepted', 'command.sent:sent', 'command.sent:sent', 'command.sent:sent', 'command.sent:sent',
      'command.timed_out:TIMEOUT',
    ]);
  });

  it('stops retrying at the first ACK, ignores the repeated answers to earlier tries', async () => {
    dev.answer = (_c, attempt) => (attempt < 3 ? null : { result: 'OK', detail: '' });
    const p = svc.execute(DEV, { verb: 'SET', args: ['HEP', 4] }, alice);
    await vi.advanceTimersByTimeAsync(1000 + SETTLE_MS);
    const res = await p;
    expect(res).toMatchObject({ ok: true, result: 'OK', tries: 3 });
    const cmdId = res.ok ? res.cmdId : '';
    // The device answers a repeated cmd_id with its first result (ICD §1): late duplicates change nothing.
    await dev.ack(cmdId, 'OK');
    await vi.advanceTimersByTimeAsync(2000);
    expect(dev.sent).toHaveLength(3);
    expect(actions().filter((a) => a.startsWith('command.late_ack'))).toEqual([]);
    expect(actions().at(-1)).toBe('command.acknowledged:OK');
  });

  it('records an ACK that comes after TIMEOUT (the command may have run after all)', async () => {
    dev.answer = () => null;
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(2000);
    const res = await p;
    expect(res).toMatchObject({ result: 'TIMEOUT' });
    await dev.ack(res.ok ? res.cmdId : '', 'OK', 'late');
    expect(audit.query().at(-1)).toMatchObject({ action: 'command.late_ack', outcome: 'OK', user: 'alice', detail: { reply: 'late' } });
  });

  it('an ACK for another cmd_id or another device does not end the wait (it is counted as unknown)', async () => {
    dev.answer = () => null;
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    const cmdId = dev.sent[0].cmdId;
    await dev.ack('zzzz9999', 'OK');
    await hub.ingest('MSC-0002', [helloFrame('MSC-0002'), { type: 'ACK', cmdId, result: 'OK', detail: '' }], dev);
    await vi.advanceTimersByTimeAsync(2000);
    expect(await p).toMatchObject({ result: 'TIMEOUT' });
    expect(await metric('unknown')).toBe(1);
    expect(await metric('unknown', 'MSC-0002')).toBe(1);
  });

  it('retries after a failed write and audits it', async () => {
    dev.failSend = (attempt) => attempt === 1;
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(500 + SETTLE_MS);
    expect(await p).toMatchObject({ result: 'OK', tries: 2 });
    expect(actions()).toEqual(['command.requested:accepted', 'command.sent:send_failed', 'command.sent:sent', 'command.acknowledged:OK']);
    expect(audit.query()[1].detail.error).toBe('port closed');
  });

  it('ends a pending command as TIMEOUT on stop()', async () => {
    dev.answer = () => null;
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    svc.stop();
    svc.stop();
    expect(await p).toMatchObject({ result: 'TIMEOUT', detail: expect.stringMatching(/stopped/) });
  });
});

describe('CommandService refusals: nothing sent', () => {
  it('400 out_of_limits for a setpoint outside the ICD limits', async () => {
    const res = await execute(DEV, { verb: 'SET', args: ['QB', 500] }, alice);
    expect(res).toMatchObject({ ok: false, status: 400, code: 'out_of_limits' });
    expect(dev.sent).toEqual([]);
    expect(audit.query()).toEqual([expect.objectContaining({ action: 'command.requested', outcome: 'refused', detail: expect.objectContaining({ refusal: 'out_of_limits' }) })]);
  });

  it('400 out_of_limits for QP above 30 % of the current QB setpoint (from SQB)', async () => {
    await feed('RUNNING', { SQB: 100, SQP: 20 });
    expect(await execute(DEV, { verb: 'SET', args: ['QP', 31] }, alice)).toMatchObject({ ok: false, status: 400, code: 'out_of_limits' });
    expect(await execute(DEV, { verb: 'SET', args: ['QP', 30] }, alice)).toMatchObject({ ok: true, result: 'OK' });
    expect(dev.sent).toHaveLength(1);
  });

  it('sends a verb the last reported state does not accept and lets the device answer REJ (audited as expected)', async () => {
    dev.answer = () => ({ result: 'REJ', detail: 'state RUNNING does not accept START' });
    const res = await execute(DEV, { verb: 'START', args: ['S-2'] }, alice);
    expect(res).toMatchObject({ ok: true, result: 'REJ', detail: 'state RUNNING does not accept START' });
    expect(dev.sent).toHaveLength(1);
    expect(audit.query()[0].detail.expectedRej).toBe('state RUNNING does not accept START');
  });

  it('400 wrong_state, nothing sent, with refuseWrongState', async () => {
    svc.stop();
    svc = new CommandService({ bus, hub, audit, logger: silentLogger(), refuseWrongState: true });
    svc.start();
    expect(await execute(DEV, { verb: 'START', args: ['S-2'] }, alice)).toMatchObject({ ok: false, status: 400, code: 'wrong_state' });
    expect(dev.sent).toEqual([]);
  });

  it('400 out_of_limits even when the state would refuse the verb too (limits are checked first)', async () => {
    await feed('FAULT');
    expect(await execute(DEV, { verb: 'SET', args: ['QB', 500] }, alice)).toMatchObject({ ok: false, status: 400, code: 'out_of_limits' });
    expect(dev.sent).toEqual([]);
  });

  it('400 malformed for wrong arity or types', async () => {
    expect(await execute(DEV, { verb: 'SET', args: ['QB'] }, alice)).toMatchObject({ ok: false, status: 400, code: 'malformed' });
    expect(await execute(DEV, { verb: 'SET', args: ['XX', 3] }, alice)).toMatchObject({ ok: false, status: 400, code: 'malformed' });
    expect(dev.sent).toEqual([]);
  });

  it('404 for an unknown device, 409 when its link is lost', async () => {
    expect(await execute('MSC-9999', { verb: 'ID', args: [] }, alice)).toMatchObject({ ok: false, status: 404, code: 'unknown_device' });
    hub.linkDown(DEV, 'port closed');
    expect(await execute(DEV, { verb: 'PAUSE', args: [] }, alice)).toMatchObject({ ok: false, status: 409, code: 'link_lost' });
    expect(dev.sent).toEqual([]);
  });

  it('503 when the audit trail cannot be written', async () => {
    db.close();
    const res = await execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    expect(res).toMatchObject({ ok: false, status: 503, code: 'audit_unavailable' });
    expect(dev.sent).toEqual([]);
    db = new Database(':memory:');
  });
});

describe('cmd_id', () => {
  it('is 8 random characters of [A-Za-z0-9] (ICD §1), unique, and not guessable from the one before', () => {
    const ids: string[] = [];
    for (let i = 0; i < 5000; i++) ids.push(svc.nextCmdId(DEV));
    expect(new Set(ids).size).toBe(5000);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9]{8}$/);
      expect(id).toMatch(CMD_ID_RE);
    }
    const all = ids.join('');
    expect(all).toMatch(/[A-Z]/);
    expect(all).toMatch(/[a-z]/);
    expect(all).toMatch(/[0-9]/);
    // No shared prefix and no counter: the old scheme gave gw8r0005, gw8r0006, ...
    expect(new Set(ids.map((id) => id.slice(0, 4))).size).toBeGreaterThan(4990);
    const counterLike = ids.slice(1).filter((id, i) => parseInt(id, 36) - parseInt(ids[i], 36) === 1);
    expect(counterLike).toEqual([]);
    // Every position takes (nearly) every one of the 62 characters.
    for (let pos = 0; pos < 8; pos++) expect(new Set(ids.map((id) => id[pos])).size).toBeGreaterThan(55);
  });

  it('never reuses an id still pending, or answered within the last 60 s, on the same console', async () => {
    // A random source that keeps drawing the same id: AAAAAAAA, AAAAAAAA, ... then BBBBBBBB.
    let draws = 0;
    const script = (max: number) => {
      expect(max).toBe(62);
      return Math.floor(draws++ / 8) < 3 ? 0 : 1;
    };
    const reset = () => { draws = 0; };
    svc.stop();
    svc = new CommandService({ bus, hub, audit, logger: silentLogger(), randomInt: script });
    svc.start();
    dev.answer = () => null;
    const first = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    expect(dev.sent[0].cmdId).toBe('AAAAAAAA');
    reset();
    // Pending on DEV: the next command to DEV draws again; another console may have the same id.
    expect(svc.nextCmdId(DEV)).toBe('BBBBBBBB');
    reset();
    expect(svc.nextCmdId('MSC-0002')).toBe('AAAAAAAA');
    await dev.ack('AAAAAAAA', 'OK');
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    expect(await first).toMatchObject({ cmdId: 'AAAAAAAA', result: 'OK' });
    // Answered: the console remembers it 60 s and would answer a new command with that id with the old result.
    await vi.advanceTimersByTimeAsync(59_000);
    reset();
    expect(svc.nextCmdId(DEV)).toBe('BBBBBBBB');
    await vi.advanceTimersByTimeAsync(1_000);
    reset();
    expect(svc.nextCmdId(DEV)).toBe('AAAAAAAA');
  });

  it('a broken random source is a clear error, not a reused id', async () => {
    svc.stop();
    svc = new CommandService({ bus, hub, audit, logger: silentLogger(), randomInt: () => 0 });
    svc.start();
    dev.answer = () => null;
    void svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    expect(() => svc.nextCmdId(DEV)).toThrow(/random source/);
  });
});

const metric = async (kind: 'unknown' | 'conflict', device = DEV) => {
  const m = (await metricsTextOf((r) => svc.registerMetrics(r))).match(new RegExp(`^msc_ack_unexpected_total\\{device="${device}",kind="${kind}"\\} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : 0;
};
const records = (action: string) => audit.query().filter((r) => r.action === action);

describe('ACKs for a cmd_id the gateway did not send', () => {
  it('are counted, audited, logged and raise ACK_UNEXPECTED (MEDIUM) on that console', async () => {
    await dev.ack('gw8r0007', 'REJ', 'forged');
    expect(await metric('unknown')).toBe(1);
    expect(records('command.ack_unknown')).toEqual([expect.objectContaining({
      user: 'gateway', role: 'system', device: DEV, session: 'S-20260105-01', outcome: 'unknown',
      detail: { count: 1, windowS: null, sample: { cmdId: 'gw8r0007', result: 'REJ', reply: 'forged' } },
    })]);
    expect(conditions).toEqual([expect.objectContaining({ device: DEV, rule: 'ACK_UNEXPECTED', active: true, priority: 'MEDIUM' })]);
    expect(conditions[0].message).toMatch(/gw8r0007.*did not send/);
  });

  it('do not decide a pending command: the console\'s own answer does', async () => {
    dev.answer = () => null;
    const p = svc.execute(DEV, { verb: 'RESUME', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    const cmdId = dev.sent[0].cmdId;
    // What guessing the old way sends: neighbours of an id seen before.
    for (const guess of ['gw8r0005', 'gw8r0006', 'gw8r0007', 'gw8r0008']) await dev.ack(guess, 'REJ', 'forged');
    await dev.ack(cmdId, 'OK');
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    expect(await p).toMatchObject({ result: 'OK', tries: 1 });
    expect(await metric('unknown')).toBe(4);
    expect(actions().filter((a) => a.startsWith('command.rejected'))).toEqual([]);
  });

  it('for another console\'s pending command, or one forgotten after 60 s, are unknown too', async () => {
    dev.answer = () => null;
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    const cmdId = dev.sent[0].cmdId;
    await hub.ingest('MSC-0002', [helloFrame('MSC-0002'), { type: 'ACK', cmdId, result: 'OK', detail: '' }], dev);
    expect(await metric('unknown', 'MSC-0002')).toBe(1);
    await dev.ack(cmdId, 'OK');
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    expect(await p).toMatchObject({ result: 'OK' });
    await dev.ack(cmdId, 'OK'); // the console's answer to a retry: normal
    expect(await metric('unknown')).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    await dev.ack(cmdId, 'OK');
    expect(await metric('unknown')).toBe(1);
  });

  it('a flood writes a bounded number of records and log lines; the alarm clears after a quiet minute', async () => {
    const lines: string[] = [];
    svc.stop();
    svc = new CommandService({
      bus, hub, audit, logger: createLogger('info', { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream),
      onCondition: (c) => conditions.push(c),
    });
    svc.start();
    for (let i = 0; i < 1000; i++) await dev.ack(`f${i}`, 'REJ', 'x'.repeat(1000));
    expect(await metric('unknown')).toBe(1000);
    expect(records('command.ack_unknown')).toHaveLength(1);
    expect(lines).toHaveLength(1);
    // The forged text is cut to a readable length in the record.
    expect(String(records('command.ack_unknown')[0].detail.sample && (records('command.ack_unknown')[0].detail.sample as any).reply)).toHaveLength(200);
    await vi.advanceTimersByTimeAsync(30_000);
    for (let i = 0; i < 500; i++) await dev.ack(`g${i}`, 'OK');
    await vi.advanceTimersByTimeAsync(30_000);
    // The first minute's summary: everything after the first record, with the last one as sample.
    expect(records('command.ack_unknown').map((r) => r.detail.count)).toEqual([1, 1499]);
    expect(records('command.ack_unknown')[1].detail).toMatchObject({ windowS: 60, sample: { cmdId: 'g499', result: 'OK' } });
    expect(lines).toHaveLength(2);
    expect(conditions.map((c) => c.active)).toEqual([true]);
    // A minute with none (the second window saw none after its start): cleared.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(conditions.map((c) => c.active)).toEqual([true, false]);
    expect(records('command.ack_unknown')).toHaveLength(2);
    expect(await metric('unknown')).toBe(1500);
  });

  it('many consoles together stay within the gateway-wide record budget; nothing is lost from the counts', async () => {
    for (let d = 0; d < 50; d++) {
      await hub.ingest(`X-${d}`, [helloFrame(`X-${d}`), { type: 'ACK', cmdId: 'forged1', result: 'REJ', detail: '' }], dev);
    }
    expect(records('command.ack_unknown')).toHaveLength(20);
    expect(conditions.filter((c) => c.active)).toHaveLength(50);
    // Held-back events go into later summaries as the budget allows.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(records('command.ack_unknown')).toHaveLength(40);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(records('command.ack_unknown')).toHaveLength(50);
    expect(records('command.ack_unknown').reduce((n, r) => n + Number(r.detail.count), 0)).toBe(50);
  });

  it('stop() writes what is held back and clears the alarm', async () => {
    await dev.ack('zz1', 'REJ');
    await dev.ack('zz2', 'REJ');
    svc.stop();
    expect(records('command.ack_unknown').map((r) => r.detail.count)).toEqual([1, 1]);
    expect(conditions.map((c) => c.active)).toEqual([true, false]);
  });
});

describe('a second ACK that contradicts the first', () => {
  it('within the settle time makes the outcome conflict: response, audit, metric, security record, alarm', async () => {
    dev.answer = () => null;
    const p = svc.execute(DEV, { verb: 'RESUME', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    const cmdId = dev.sent[0].cmdId;
    await dev.ack(cmdId, 'OK');
    await vi.advanceTimersByTimeAsync(50);
    await dev.ack(cmdId, 'REJ', 'state RUNNING does not accept RESUME');
    const res = await p; // no need to wait the rest of the settle time
    expect(res).toMatchObject({ ok: true, cmdId, result: 'conflict', tries: 1 });
    expect(res.ok && res.detail).toMatch(/conflicting answers from the console: OK, then REJ \(state RUNNING does not accept RESUME\); verify its state/);
    expect(actions()).toEqual(['command.requested:accepted', 'command.sent:sent', 'command.ack_conflict:conflict', 'command.conflict:conflict']);
    expect(records('command.conflict')[0]).toMatchObject({ user: 'alice', detail: {
      cmdId, verb: 'RESUME', answers: [{ result: 'OK', reply: '' }, { result: 'REJ', reply: 'state RUNNING does not accept RESUME' }],
    } });
    expect(records('command.ack_conflict')[0]).toMatchObject({ user: 'gateway', detail: { count: 1, sample: { cmdId, result: 'REJ', verb: 'RESUME', first: 'OK' } } });
    expect(await metricsTextOf((r) => svc.registerMetrics(r))).toMatch(/^msc_commands_total\{outcome="conflict"\} 1$/m);
    expect(await metricsTextOf((r) => svc.registerMetrics(r))).toMatch(/^msc_commands_total\{outcome="OK"\} 0$/m);
    expect(await metric('conflict')).toBe(1);
    expect(conditions).toEqual([expect.objectContaining({ device: DEV, rule: 'ACK_UNEXPECTED', active: true, priority: 'MEDIUM' })]);
    expect(conditions[0].message).toMatch(/Conflicting answers .* RESUME .* OK then REJ; verify/);
  });

  it('a forged early answer does not decide: the console\'s different answer right after it makes it conflict', async () => {
    // The forger saw the cmd and answered before the console did.
    dev.answer = (cmd) => {
      void dev.ack(cmd.cmdId, 'REJ', 'forged');
      return { result: 'OK', detail: '' };
    };
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    const res = await p;
    expect(res).toMatchObject({ result: 'conflict' });
    expect(res.ok && res.detail).toMatch(/REJ \(forged\), then OK/);
  });

  it('the same answer twice (the console answering a retry) is no event', async () => {
    dev.answer = () => ({ result: 'REJ', detail: 'door open' });
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    await dev.ack(dev.sent[0].cmdId, 'REJ', 'door open');
    await vi.advanceTimersByTimeAsync(SETTLE_MS);
    expect(await p).toMatchObject({ result: 'REJ' });
    await dev.ack(dev.sent[0].cmdId, 'REJ', 'door open');
    expect((await metric('conflict')) + (await metric('unknown'))).toBe(0);
    expect(conditions).toEqual([]);
  });

  it('after the outcome was reported: recorded as conflict once per command, every one counted', async () => {
    const res = await execute(DEV, { verb: 'SET', args: ['QB', 160] }, alice);
    expect(res).toMatchObject({ result: 'OK' });
    const cmdId = res.ok ? res.cmdId : '';
    await vi.advanceTimersByTimeAsync(5_000);
    for (let i = 0; i < 10; i++) await dev.ack(cmdId, 'ERR', 'forged');
    expect(records('command.conflict')).toEqual([expect.objectContaining({
      user: 'alice', outcome: 'conflict',
      detail: expect.objectContaining({ cmdId, verb: 'SET', reported: 'OK', afterMs: 5_000 }),
    })]);
    expect(await metric('conflict')).toBe(10);
    expect(records('command.ack_conflict')).toHaveLength(1);
    expect(conditions.map((c) => c.active)).toEqual([true]);
  });

  it('after a late ACK (following TIMEOUT), a different answer is a conflict as well', async () => {
    dev.answer = () => null;
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(2000);
    const res = await p;
    const cmdId = res.ok ? res.cmdId : '';
    await dev.ack(cmdId, 'OK');
    await dev.ack(cmdId, 'OK');
    expect(await metric('conflict')).toBe(0);
    await dev.ack(cmdId, 'REJ');
    expect(actions().slice(-3)).toEqual(['command.late_ack:OK', 'command.ack_conflict:conflict', 'command.conflict:conflict']);
  });
});

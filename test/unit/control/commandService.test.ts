import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { EventBus } from '../../../src/bus.js';
import { CommandService } from '../../../src/control/commandService.js';
import { silentLogger } from '../../../src/log.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import type { DeviceLink } from '../../../src/model/types.js';
import { CMD_ID_RE } from '../../../src/protocol/commands.js';
import type { AckResult, Command } from '../../../src/protocol/types.js';
import { helloFrame } from '../../helpers/hello.js';

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
let seq = 1;

async function feed(state: string, setpoints: Record<string, number> = { SQB: 150, SQP: 30, STR: 37, SHEP: 5 }): Promise<void> {
  const t = Date.now();
  await hub.ingest(DEV, [
    { type: 'S', seq: seq++, t, state: state as 'RUNNING', sessionId: state === 'RUNNING' || state === 'PAUSED' ? 'S-20260105-01' : null },
    { type: 'T', seq: seq++, t, v: { QB: 150, ...setpoints } },
  ], dev);
}

const actions = () => audit.query().map((r) => `${r.action}:${r.outcome}`);

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  db = new Database(':memory:');
  audit = new AuditLog({ db });
  audit.start();
  bus = new EventBus();
  hub = new DeviceHub({ bus, logger: silentLogger() });
  dev = new FakeConsole(hub);
  await hub.ingest(DEV, [helloFrame(DEV)], dev);
  svc = new CommandService({ bus, hub, audit, logger: silentLogger() });
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
    const res = await svc.execute(DEV, { verb: 'SET', args: ['QB', 160], reason: 'raise flow' }, alice);
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
    expect(await svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice)).toMatchObject({ ok: true, result: 'REJ', detail: 'door open' });
    dev.answer = () => ({ result: 'ERR', detail: 'bad frame' });
    expect(await svc.execute(DEV, { verb: 'SILENCE', args: [] }, alice)).toMatchObject({ ok: true, result: 'ERR', detail: 'bad frame' });
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
    await vi.advanceTimersByTimeAsync(1000);
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

  it('ignores ACKs for another cmd_id or another device', async () => {
    dev.answer = () => null;
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(0);
    const cmdId = dev.sent[0].cmdId;
    await dev.ack('zzzz9999', 'OK');
    await hub.ingest('MSC-0002', [{ type: 'ACK', cmdId, result: 'OK', detail: '' }], dev);
    await vi.advanceTimersByTimeAsync(2000);
    expect(await p).toMatchObject({ result: 'TIMEOUT' });
  });

  it('retries after a failed write and audits it', async () => {
    dev.failSend = (attempt) => attempt === 1;
    const p = svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    await vi.advanceTimersByTimeAsync(500);
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
    const res = await svc.execute(DEV, { verb: 'SET', args: ['QB', 500] }, alice);
    expect(res).toMatchObject({ ok: false, status: 400, code: 'out_of_limits' });
    expect(dev.sent).toEqual([]);
    expect(audit.query()).toEqual([expect.objectContaining({ action: 'command.requested', outcome: 'refused', detail: expect.objectContaining({ refusal: 'out_of_limits' }) })]);
  });

  it('400 out_of_limits for QP above 30 % of the current QB setpoint (from SQB)', async () => {
    await feed('RUNNING', { SQB: 100, SQP: 20 });
    expect(await svc.execute(DEV, { verb: 'SET', args: ['QP', 31] }, alice)).toMatchObject({ ok: false, status: 400, code: 'out_of_limits' });
    expect(await svc.execute(DEV, { verb: 'SET', args: ['QP', 30] }, alice)).toMatchObject({ ok: true, result: 'OK' });
    expect(dev.sent).toHaveLength(1);
  });

  it('sends a verb the last reported state does not accept and lets the device answer REJ (audited as expected)', async () => {
    dev.answer = () => ({ result: 'REJ', detail: 'state RUNNING does not accept START' });
    const res = await svc.execute(DEV, { verb: 'START', args: ['S-2'] }, alice);
    expect(res).toMatchObject({ ok: true, result: 'REJ', detail: 'state RUNNING does not accept START' });
    expect(dev.sent).toHaveLength(1);
    expect(audit.query()[0].detail.expectedRej).toBe('state RUNNING does not accept START');
  });

  it('400 wrong_state, nothing sent, with refuseWrongState', async () => {
    svc.stop();
    svc = new CommandService({ bus, hub, audit, logger: silentLogger(), refuseWrongState: true });
    svc.start();
    expect(await svc.execute(DEV, { verb: 'START', args: ['S-2'] }, alice)).toMatchObject({ ok: false, status: 400, code: 'wrong_state' });
    expect(dev.sent).toEqual([]);
  });

  it('400 out_of_limits even when the state would refuse the verb too (limits are checked first)', async () => {
    await feed('FAULT');
    expect(await svc.execute(DEV, { verb: 'SET', args: ['QB', 500] }, alice)).toMatchObject({ ok: false, status: 400, code: 'out_of_limits' });
    expect(dev.sent).toEqual([]);
  });

  it('400 malformed for wrong arity or types', async () => {
    expect(await svc.execute(DEV, { verb: 'SET', args: ['QB'] }, alice)).toMatchObject({ ok: false, status: 400, code: 'malformed' });
    expect(await svc.execute(DEV, { verb: 'SET', args: ['XX', 3] }, alice)).toMatchObject({ ok: false, status: 400, code: 'malformed' });
    expect(dev.sent).toEqual([]);
  });

  it('404 for an unknown device, 409 when its link is lost', async () => {
    expect(await svc.execute('MSC-9999', { verb: 'ID', args: [] }, alice)).toMatchObject({ ok: false, status: 404, code: 'unknown_device' });
    hub.linkDown(DEV, 'port closed');
    expect(await svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice)).toMatchObject({ ok: false, status: 409, code: 'link_lost' });
    expect(dev.sent).toEqual([]);
  });

  it('503 when the audit trail cannot be written', async () => {
    db.close();
    const res = await svc.execute(DEV, { verb: 'PAUSE', args: [] }, alice);
    expect(res).toMatchObject({ ok: false, status: 503, code: 'audit_unavailable' });
    expect(dev.sent).toEqual([]);
    db = new Database(':memory:');
  });
});

describe('cmd_id', () => {
  it('is 8 characters of [0-9a-z], unique within a run, and differs after a restart', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) ids.add(svc.nextCmdId());
    expect(ids.size).toBe(5000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-z]{8}$/);
    vi.setSystemTime(Date.now() + 1000);
    const restarted = new CommandService({ bus, hub, audit, logger: silentLogger() });
    expect(ids.has(restarted.nextCmdId())).toBe(false);
  });
});

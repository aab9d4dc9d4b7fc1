/**
 * A command whose request was audited, then the trail failed before the console answered (the journal's disk
 * filled up between the two): the command went out and was answered, so its "sent" and "acknowledged" records
 * must not be lost. With the gateway's PendingAudit they wait in order and join the chain when the trail is back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../src/audit/auditLog.js';
import { PendingAudit } from '../../../src/audit/pendingAudit.js';
import { EventBus } from '../../../src/bus.js';
import { CommandService } from '../../../src/control/commandService.js';
import { silentLogger } from '../../../src/log.js';
import { DeviceHub } from '../../../src/model/deviceHub.js';
import type { DeviceLink } from '../../../src/model/types.js';
import type { Command } from '../../../src/protocol/types.js';
import { helloFrame } from '../../helpers/hello.js';

const DEV = 'MSC-0001';
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('command audit records after the action', () => {
  it('wait for the trail instead of being lost, and are chained in order once it is back', async () => {
    dir = mkdtempSync(join(tmpdir(), 'msc-cmd-pending-'));
    const file = join(dir, 'journal.sqlite');
    let db = new Database(file);
    const audit = new AuditLog({ db });
    audit.start();
    const bus = new EventBus();
    const hub = new DeviceHub({ bus, logger: silentLogger() });
    const conditions: Array<string | null> = [];
    const pending = new PendingAudit({ sink: audit, now: Date.now, logger: silentLogger(), onCondition: (m) => conditions.push(m), retryMs: 60_000 });
    const link: DeviceLink = {
      kind: 'serial', source: '/dev/ttyFAKE',
      send: async (cmd: Command) => {
        db.close(); // the trail fails after the request was audited, before the answer
        queueMicrotask(() => void hub.ingest(DEV, [{ type: 'ACK', cmdId: cmd.cmdId, result: 'OK', detail: '' }], link));
      },
    };
    const svc = new CommandService({ bus, hub, audit, afterAction: (e) => pending.record(e), logger: silentLogger() });
    svc.start();
    const t = Date.now();
    await hub.ingest(DEV, [
      helloFrame(DEV),
      { type: 'S', seq: 1, t, state: 'RUNNING', sessionId: 'S-1' },
      { type: 'T', seq: 2, t, v: { QB: 150, SQB: 150, SQP: 30, STR: 37, SHEP: 5 } },
    ], link);

    const res = await svc.execute(DEV, { verb: 'PAUSE', args: [] }, { user: 'alice', role: 'operator' });
    expect(res).toMatchObject({ ok: true, result: 'OK' });
    expect(pending.pending).toBe(2);
    expect(conditions.at(-1)).toMatch(/audit record\(s\) of actions taken wait/);

    db = new Database(file);
    audit.useDatabase(db);
    pending.flush();
    expect(pending.pending).toBe(0);
    expect(conditions.at(-1)).toBeNull();
    expect(audit.query().map((r) => `${r.action}:${r.outcome}`)).toEqual(['command.requested:accepted', 'command.sent:sent', 'command.acknowledged:OK']);
    expect(audit.verify()).toMatchObject({ ok: true, count: 3 });
    svc.stop();
    pending.stop();
    db.close();
  });
});

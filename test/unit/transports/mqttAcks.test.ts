/**
 * OrderedAcks (src/transports/mqttAcks.ts): PUBACKs go out once their message is durable, in arrival order, one
 * write per connection for what one commit made durable, never for a message whose ingest failed.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { OrderedAcks } from '../../../src/transports/mqttAcks.js';

class Sink extends Writable {
  writes: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.writes.push(chunk);
    done();
  }
  /** The message ids of every PUBACK written, in order. */
  ids(): number[] {
    const all = Buffer.concat(this.writes);
    const out: number[] = [];
    for (let i = 0; i < all.length; i += 4) {
      expect([all[i], all[i + 1]]).toEqual([0x40, 0x02]);
      out.push(all.readUInt16BE(i + 2));
    }
    return out;
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((ok, fail) => { resolve = ok; reject = fail; });
  return { promise, resolve, reject };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('OrderedAcks', () => {
  it('holds a PUBACK until every earlier message is durable, then sends them in arrival order', async () => {
    const acks = new OrderedAcks();
    const s = new Sink();
    const d = [deferred(), deferred(), deferred()];
    d.forEach((x, i) => acks.defer(s, 10 + i, x.promise, () => undefined));
    d[2].resolve();
    d[1].resolve();
    await settle();
    expect(s.ids()).toEqual([]);
    expect(acks.pending).toBe(3);
    d[0].resolve();
    await settle();
    expect(s.ids()).toEqual([10, 11, 12]);
    expect(acks.acked).toBe(3);
    expect(acks.pending).toBe(0);
  });

  it('writes what one commit made durable in one write per connection', async () => {
    const acks = new OrderedAcks();
    const s = new Sink();
    const commit = deferred();
    for (let i = 1; i <= 50; i++) acks.defer(s, i, commit.promise, () => undefined);
    commit.resolve();
    await settle();
    expect(s.writes).toHaveLength(1);
    expect(s.ids()).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('sends no PUBACK for a failed message, reports it, and goes on with the next', async () => {
    const acks = new OrderedAcks();
    const s = new Sink();
    const failed: unknown[] = [];
    const bad = deferred();
    acks.defer(s, 1, Promise.resolve(), () => undefined);
    acks.defer(s, 2, bad.promise, (err) => failed.push(err));
    acks.defer(s, 3, Promise.resolve(), () => undefined);
    bad.reject(new Error('disk'));
    await settle();
    expect(s.ids()).toEqual([1, 3]);
    expect(failed).toHaveLength(1);
    expect(acks.acked).toBe(2);
  });

  it('writes nothing to a connection that closed; idle() resolves once nothing is pending', async () => {
    const acks = new OrderedAcks();
    const old = new Sink();
    const fresh = new Sink();
    const commit = deferred();
    acks.defer(old, 1, commit.promise, () => undefined);
    acks.defer(fresh, 1, commit.promise, () => undefined);
    old.destroy();
    let idle = false;
    void acks.idle().then(() => { idle = true; });
    await settle();
    expect(idle).toBe(false);
    commit.resolve();
    await settle();
    expect(old.writes).toHaveLength(0);
    expect(fresh.ids()).toEqual([1]);
    expect(idle).toBe(true);
  });

  it('messages of one batch (one promise) that fails each get no PUBACK and each report their own topic; the next batch goes on', async () => {
    const acks = new OrderedAcks();
    const s = new Sink();
    const failed: string[] = [];
    const onFailed = (_err: unknown, topic: string, stream: Writable) => {
      expect(stream).toBe(s);
      failed.push(topic);
    };
    const first = deferred();
    const second = deferred();
    acks.defer(s, 1, first.promise, onFailed, 'msc/v1/A/telemetry');
    acks.defer(s, 2, first.promise, onFailed, 'msc/v1/B/telemetry');
    acks.defer(s, 3, second.promise, onFailed, 'msc/v1/A/telemetry');
    acks.defer(s, 4, second.promise, onFailed, 'msc/v1/C/telemetry');
    second.resolve();
    await settle();
    expect(s.ids()).toEqual([]); // held behind the first batch
    first.reject(new Error('disk'));
    await settle();
    expect(failed).toEqual(['msc/v1/A/telemetry', 'msc/v1/B/telemetry']);
    expect(s.ids()).toEqual([3, 4]);
    expect(s.writes).toHaveLength(1);
    expect(acks.pending).toBe(0);
  });

  it('a promise given again after it settled still releases the messages deferred on it', async () => {
    const acks = new OrderedAcks();
    const s = new Sink();
    const done = Promise.resolve();
    acks.defer(s, 1, done, () => undefined);
    await settle();
    acks.defer(s, 2, done, () => undefined);
    await settle();
    expect(s.ids()).toEqual([1, 2]);
    expect(acks.pending).toBe(0);
  });
});

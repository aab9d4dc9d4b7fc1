/**
 * QoS 1 acknowledgements sent once a message is durable, in the order received, without holding back the
 * next PUBLISH (docs/storage.md, "Acknowledgement and the live path").
 *
 * mqtt.js reads the next packet of a connection only after `handleMessage` calls back, and sends the PUBACK
 * at that moment. Holding the callback until the journal had written the message meant one journal commit
 * per message and a broker queue, in front of the live view too, whenever the disk was slower than the
 * message rate. Instead `handleMessage` calls back at once with DEFERRED (mqtt.js then sends no PUBACK and
 * reads on: its documented error path), and this queue writes each PUBACK on the connection that carried
 * the PUBLISH once that message is durable, in arrival order (MQTT 3.1.1 §4.6, MQTT 5 §4.6: PUBACKs in the
 * order the PUBLISHes were received). Messages in flight are bounded by the broker's window (MQTT 5 Receive
 * Maximum, mosquitto's `max_inflight_messages`). A connection that closed before its messages were durable
 * gets no PUBACK for them: the broker delivers them again on the resumed session, and the journal stores a
 * redelivered sample once.
 */
import type { Writable } from 'node:stream';

/** Passed to mqtt.js' handleMessage callback: "no PUBACK from you, go on reading". */
export const DEFERRED: Error = Object.freeze(new Error('PUBACK deferred until the message is durable')) as Error;

interface PendingAck {
  stream: Writable;
  messageId: number;
  state: 'waiting' | 'durable' | 'failed';
}

/** PUBACK with reason Success and no properties: 2 bytes of remaining length in MQTT 3.1.1 and 5 alike (5 §3.4.2.1). */
function puback(messageId: number): Buffer {
  return Buffer.from([0x40, 0x02, (messageId >> 8) & 0xff, messageId & 0xff]);
}

export class OrderedAcks {
  private queue: PendingAck[] = [];
  private head = 0;
  private idleWaiters: Array<() => void> = [];
  private sent = 0;
  private drainQueued = false;

  /**
   * Holds the PUBACK of `messageId` until `durable` resolves and every earlier message's has gone. When it
   * rejects, no PUBACK is sent (onFailed drops the connection, and the broker delivers the message again).
   */
  defer(stream: Writable, messageId: number, durable: Promise<void>, onFailed: (err: unknown) => void): void {
    const entry: PendingAck = { stream, messageId, state: 'waiting' };
    this.queue.push(entry);
    durable.then(
      () => {
        entry.state = 'durable';
        this.scheduleDrain();
      },
      (err: unknown) => {
        entry.state = 'failed';
        onFailed(err);
        this.scheduleDrain();
      },
    );
  }

  /** Messages received and not yet acknowledged (or given up). */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** PUBACKs written since start. */
  get acked(): number {
    return this.sent;
  }

  /** Resolves once nothing is pending. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * One commit makes many messages durable at once: their reactions all run before this microtask, so one
   * drain writes their PUBACKs in one write per connection instead of one system call each.
   */
  private scheduleDrain(): void {
    if (this.drainQueued) return;
    this.drainQueued = true;
    queueMicrotask(() => {
      this.drainQueued = false;
      this.drain();
    });
  }

  private drain(): void {
    let stream: Writable | null = null;
    let batch: Buffer[] = [];
    const flush = () => {
      if (stream && batch.length > 0 && !stream.destroyed && stream.writable) {
        stream.write(batch.length === 1 ? batch[0] : Buffer.concat(batch));
        this.sent += batch.length;
      }
      batch = [];
    };
    while (this.head < this.queue.length) {
      const e = this.queue[this.head];
      if (e.state === 'waiting') break;
      this.head += 1;
      if (e.state !== 'durable') continue;
      if (e.stream !== stream) {
        flush();
        stream = e.stream;
      }
      batch.push(puback(e.messageId));
    }
    flush();
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.pending === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}

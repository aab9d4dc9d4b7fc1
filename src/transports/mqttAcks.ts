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

/** Messages that become durable together: those given the same promise (one journal batch). */
interface AckGroup {
  state: 'waiting' | 'durable' | 'failed';
}

/** Called once per message whose ingest failed (no PUBACK goes out for it). */
export type AckFailed = (err: unknown, topic: string, stream: Writable) => void;

interface PendingAck {
  stream: Writable;
  messageId: number;
  group: AckGroup;
  topic: string;
  onFailed: AckFailed;
}

const PUBACK_BYTES = 4;

/** PUBACK with reason Success and no properties: 2 bytes of remaining length in MQTT 3.1.1 and 5 alike (5 §3.4.2.1). */
function writePuback(to: Buffer, at: number, messageId: number): void {
  to[at] = 0x40;
  to[at + 1] = 0x02;
  to[at + 2] = (messageId >> 8) & 0xff;
  to[at + 3] = messageId & 0xff;
}

export class OrderedAcks {
  private queue: PendingAck[] = [];
  private head = 0;
  private idleWaiters: Array<() => void> = [];
  private sent = 0;
  private drainQueued = false;
  /** The last promise given to defer() and its group: the messages of one batch share one reaction. */
  private lastPromise: Promise<void> | null = null;
  private lastGroup: AckGroup | null = null;

  /**
   * Holds the PUBACK of `messageId` until `durable` resolves and every earlier message's has gone. When it
   * rejects, no PUBACK is sent and `onFailed` is called with `topic` (the caller drops the connection, and the
   * broker delivers the message again). Messages given the same promise share one reaction to it.
   */
  defer(stream: Writable, messageId: number, durable: Promise<void>, onFailed: AckFailed, topic = ''): void {
    let group = this.lastGroup;
    if (durable !== this.lastPromise || group === null || group.state !== 'waiting') {
      const g: AckGroup = (group = { state: 'waiting' });
      this.lastPromise = durable;
      this.lastGroup = g;
      durable.then(
        () => {
          g.state = 'durable';
          this.scheduleDrain();
        },
        (err: unknown) => {
          g.state = 'failed';
          for (let i = this.head; i < this.queue.length; i++) {
            const e = this.queue[i];
            if (e.group === g) e.onFailed(err, e.topic, e.stream);
          }
          this.scheduleDrain();
        },
      );
    }
    this.queue.push({ stream, messageId, group, topic, onFailed });
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
    // Runs of durable messages on one connection: one buffer and one write each.
    while (this.head < this.queue.length) {
      const first = this.queue[this.head];
      if (first.group.state === 'waiting') break;
      if (first.group.state === 'failed') {
        this.head += 1;
        continue;
      }
      const stream = first.stream;
      let end = this.head;
      while (end < this.queue.length && this.queue[end].stream === stream && this.queue[end].group.state === 'durable') end++;
      const n = end - this.head;
      if (!stream.destroyed && stream.writable) {
        const buf = Buffer.allocUnsafe(n * PUBACK_BYTES);
        for (let i = 0; i < n; i++) writePuback(buf, i * PUBACK_BYTES, this.queue[this.head + i].messageId);
        stream.write(buf);
        this.sent += n;
      }
      this.head = end;
    }
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

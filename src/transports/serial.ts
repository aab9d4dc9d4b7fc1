/**
 * One console on one serial port (ICD §1): open 8N1, split lines, decode, hand frames to the sink; learn who is
 * on the port from HELLO; reopen forever with capped backoff when the port goes away (cable pulled, USB
 * re-enumerated). Serial has no acknowledgement, so lines are handed over in order without waiting for
 * durability.
 */
import { SerialPortStream, type OpenOptions } from '@serialport/stream';
import { SerialPort } from 'serialport';
import type { DeviceLink, IngestSink } from '../model/types.js';
import { LineSplitter, MAX_FRAME_BYTES, type SplitterOutput } from '../protocol/lineSplitter.js';
import { decodeLine, encodeCommand } from '../protocol/serial.js';
import type { Command, DeviceFrame, Discard, HelloFrame } from '../protocol/types.js';
import { Backoff } from '../util/backoff.js';
import { keepAliveClock, type Clock, type TimerHandle } from '../util/clock.js';
import { errorText, LogThrottle, type Transport, type TransportLogger, type TransportStatus } from './types.js';

export interface SerialTransportOptions {
  /** Port path, e.g. /dev/ttyUSB0 (one transport per `--serial PATH`). */
  path: string;
  /** ICD §1: 115200. */
  baudRate?: number;
  sink: IngestSink;
  logger: TransportLogger;
  /** Without a HELLO this long after opening, ask with `CMD ID`. */
  helloTimeoutMs?: number;
  /** `CMD ID` is re-sent with backoff from helloTimeoutMs up to this. */
  maxIdentifyIntervalMs?: number;
  /** First reopen delay; doubles up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Frames kept while the port has not said who it is. */
  pendingLimit?: number;
  /** Hardware access; @serialport/binding-mock in unit tests. Default: the OS binding of `serialport`. */
  binding?: OpenOptions['binding'];
  /** Reopen and identify timers, and the time for log throttling (default: timers that keep the process alive). */
  clock?: Clock;
  /** Overrides clock.now for log throttling only (kept for callers that inject time alone). */
  now?: () => number;
  random?: () => number;
}

type PortState = 'idle' | 'opening' | 'open' | 'waiting' | 'stopped';

type PendingFrame = { frame: DeviceFrame; raw: string };

const DISCARD_LOG_WINDOW_MS = 10_000;

export class SerialTransport implements Transport {
  readonly kind = 'serial' as const;
  private state: PortState = 'idle';
  private port: SerialPortStream | null = null;
  private splitter: LineSplitter | null = null;
  private retryTimer: TimerHandle | null = null;
  private identifyTimer: TimerHandle | null = null;
  /** The console last identified on this port; kept across a reopen until a HELLO confirms or replaces it. */
  private deviceId: string | null = null;
  /** A HELLO was received since this port was opened: frames are attributed to deviceId. */
  private identified = false;
  /** deviceId was told linkDown and not yet seen again. */
  private reportedDown = false;
  private pending: PendingFrame[] = [];
  private everOpened = false;
  private reconnects = 0;
  private lastError: string | null = null;
  private lastLoggedFailure: string | null = null;
  private stillRetryingLogged = false;
  private identifySent = 0;
  private idCounter: number;
  private readonly links = new Map<string, DeviceLink>();
  private readonly reopenBackoff: Backoff;
  private readonly identifyBackoff: Backoff;
  private readonly discardLog: LogThrottle;
  private readonly log: TransportLogger;
  private readonly clock: Clock;

  constructor(private readonly opts: SerialTransportOptions) {
    this.clock = opts.clock ?? keepAliveClock;
    this.log = opts.logger.child({ transport: 'serial', source: opts.path });
    const random = opts.random ?? Math.random;
    this.reopenBackoff = new Backoff({ initialMs: opts.initialBackoffMs ?? 250, maxMs: opts.maxBackoffMs ?? 5000, random });
    const helloMs = opts.helloTimeoutMs ?? 2000;
    this.identifyBackoff = new Backoff({ initialMs: helloMs, maxMs: Math.max(helloMs, opts.maxIdentifyIntervalMs ?? 10_000), jitter: 0 });
    this.discardLog = new LogThrottle(DISCARD_LOG_WINDOW_MS, opts.now ?? (() => this.clock.now()));
    // ICD §1: a cmd_id repeated within 60 s is answered with the first result and NOT executed again, so an
    // `ID` re-using an id from a previous gateway run would get an ACK but no HELLO. Start at a random point.
    this.idCounter = Math.floor(random() * 36 ** 6);
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'waiting';
    this.open();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.clearTimers();
    const port = this.port;
    this.detach();
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  status(): TransportStatus {
    return {
      kind: 'serial',
      source: this.opts.path,
      up: this.state === 'open',
      detail: this.describe(),
      reconnects: this.reconnects,
      lastError: this.lastError,
    };
  }

  /** The console identified on this port, or null before its first HELLO. */
  identity(): string | null {
    return this.identified ? this.deviceId : null;
  }

  private describe(): string {
    switch (this.state) {
      case 'idle': return 'not started';
      case 'stopped': return 'stopped';
      case 'opening': return 'opening';
      case 'waiting': return `port unavailable, retrying (attempt ${this.reopenBackoff.attempts})`;
      case 'open':
        return this.identified
          ? `open, device ${this.deviceId}`
          : `open, waiting for HELLO (CMD ID sent ${this.identifySent} times)`;
    }
  }

  private open(): void {
    this.retryTimer = null;
    if (this.state === 'stopped') return;
    this.state = 'opening';
    // ICD §1: 115200 8N1, no flow control.
    const port = new SerialPortStream({
      binding: this.opts.binding ?? SerialPort.binding, path: this.opts.path, baudRate: this.opts.baudRate ?? 115_200,
      dataBits: 8, parity: 'none', stopBits: 1, rtscts: false, xon: false, xoff: false, xany: false, autoOpen: false,
    });
    this.port = port;
    port.on('error', (err) => this.onPortLost(port, errorText(err)));
    port.on('close', (err: Error | null) => this.onPortLost(port, err ? errorText(err) : 'port closed'));
    port.on('end', () => this.onPortLost(port, 'end of stream'));
    port.open((err) => (err ? this.onOpenFailed(port, errorText(err)) : this.onOpened(port)));
  }

  private onOpened(port: SerialPortStream): void {
    if (this.port !== port || this.state === 'stopped') {
      port.close(() => undefined); // stop() came while it was opening
      return;
    }
    this.state = 'open';
    this.lastError = null;
    if (this.everOpened) {
      this.reconnects++;
      this.log.info({ tries: this.reopenBackoff.attempts }, `serial port reopened after ${this.reopenBackoff.attempts} tries`);
    } else {
      this.log.info('serial port opened');
    }
    this.everOpened = true;
    this.reopenBackoff.reset();
    this.lastLoggedFailure = null;
    this.stillRetryingLogged = false;
    this.identified = false;
    this.identifySent = 0;
    this.identifyBackoff.reset();
    // Not @serialport/parser-readline: it buffers without bound until a newline arrives, and line noise or
    // a binary burst may never contain one. LineSplitter caps a line at MAX_FRAME_BYTES (ICD §1).
    const splitter = new LineSplitter();
    this.splitter = splitter;
    splitter.on('data', (item: SplitterOutput) => this.onItem(item));
    splitter.on('error', (err) => this.onPortLost(port, `line splitter: ${errorText(err)}`));
    port.pipe(splitter);
    // ICD §1: HELLO comes after the link is (re)opened; a console that was already running (or an RS-232
    // line that cannot tell it was reopened) says nothing, so ask it.
    this.identifyTimer = this.clock.setTimeout(() => this.identify(), this.opts.helloTimeoutMs ?? 2000);
  }

  private onOpenFailed(port: SerialPortStream, reason: string): void {
    if (this.port !== port) return;
    this.detach();
    if (this.state === 'stopped') return;
    this.lastError = reason;
    if (reason !== this.lastLoggedFailure) {
      this.log.warn({ reason }, this.lastLoggedFailure === null && !this.everOpened
        ? `serial port unavailable: ${reason}; retrying`
        : `serial port still unavailable: ${reason}`);
      this.lastLoggedFailure = reason;
    }
    this.scheduleReopen();
  }

  private onPortLost(port: SerialPortStream, reason: string): void {
    if (this.port !== port || this.state === 'stopped') return;
    if (this.state === 'opening') return; // open()'s callback reports it
    this.detach();
    if (port.isOpen) port.close(() => undefined);
    this.lastError = reason;
    this.log.warn({ reason, device: this.deviceId }, `serial port lost: ${reason}`);
    this.lastLoggedFailure = reason;
    this.dropPending('the port closed before a HELLO');
    if (this.deviceId !== null && !this.reportedDown) {
      this.opts.sink.linkDown(this.deviceId, `serial port lost: ${reason}`);
      this.reportedDown = true;
    }
    this.identified = false;
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    this.state = 'waiting';
    if (this.reopenBackoff.capped && !this.stillRetryingLogged) {
      this.log.info(`serial port still unavailable, still retrying every ${this.opts.maxBackoffMs ?? 5000} ms`);
      this.stillRetryingLogged = true;
    }
    this.retryTimer = this.clock.setTimeout(() => this.open(), this.reopenBackoff.next());
  }

  /** Forgets the current port object; listeners stay so a late event from it is recognised as stale. */
  private detach(): void {
    this.clock.clearTimeout(this.identifyTimer);
    this.identifyTimer = null;
    if (this.port && this.splitter) this.port.unpipe(this.splitter);
    this.splitter?.removeAllListeners('data');
    this.splitter = null;
    this.port = null;
  }

  private clearTimers(): void {
    this.clock.clearTimeout(this.retryTimer);
    this.clock.clearTimeout(this.identifyTimer);
    this.retryTimer = null;
    this.identifyTimer = null;
  }

  private onItem(item: SplitterOutput): void {
    if (item.kind === 'too_long') {
      this.discard({
        type: 'discard', reason: 'too_long', raw: '',
        detail: `line of ${item.bytes} bytes exceeds the ${MAX_FRAME_BYTES}-byte frame limit (ICD §1)`,
      });
      return;
    }
    for (const out of decodeLine(item.line)) {
      if (out.type === 'discard') this.discard(out);
      else this.onFrame(out, item.line);
    }
  }

  private onFrame(frame: DeviceFrame, raw: string): void {
    if (frame.type === 'HELLO') {
      this.onHello(frame);
    } else if (this.identified && this.deviceId !== null) {
      this.deliver(this.deviceId, [frame]);
    } else {
      this.keepPending(frame, raw);
    }
  }

  private onHello(hello: HelloFrame): void {
    const previous = this.deviceId;
    const wasIdentified = this.identified;
    if (previous !== null && previous !== hello.deviceId) {
      this.log.warn({ previous, device: hello.deviceId }, 'different console on this port');
      if (!this.reportedDown) this.opts.sink.linkDown(previous, `console swapped: ${hello.deviceId} now on ${this.opts.path}`);
    }
    const confirmsReopen = previous === hello.deviceId && !wasIdentified && this.reportedDown;
    this.clock.clearTimeout(this.identifyTimer);
    this.identifyTimer = null;
    this.deviceId = hello.deviceId;
    this.identified = true;
    this.reportedDown = false;
    if (confirmsReopen) this.opts.sink.reconnected(hello.deviceId);
    if (!wasIdentified || previous !== hello.deviceId) this.log.info({ device: hello.deviceId }, 'console identified');
    // Frames that came before the HELLO are handed over in arrival order (IngestSink contract), HELLO last.
    const frames = this.pending.map((p) => p.frame);
    this.pending = [];
    frames.push(hello);
    this.deliver(hello.deviceId, frames);
  }

  private keepPending(frame: DeviceFrame, raw: string): void {
    const limit = this.opts.pendingLimit ?? 1000;
    if (this.pending.length >= limit) {
      // The oldest goes: what is kept stays contiguous with the frames that follow the HELLO.
      const dropped = this.pending.shift()!;
      this.discardAnonymous(dropped.raw, 'no identity yet (no HELLO): pending buffer full');
    }
    this.pending.push({ frame, raw });
  }

  private dropPending(why: string): void {
    for (const p of this.pending) this.discardAnonymous(p.raw, `no identity yet (no HELLO): ${why}`);
    this.pending = [];
  }

  private discardAnonymous(raw: string, detail: string): void {
    // A valid frame without an identity: no DiscardReason fits exactly; 'malformed' by agreement.
    this.discard({ type: 'discard', reason: 'malformed', raw: raw.slice(0, 128), detail });
  }

  private discard(d: Discard): void {
    const deviceId = this.identified ? this.deviceId : null;
    this.opts.sink.discard(deviceId, this.opts.path, d);
    const admitted = this.discardLog.admit(d.reason);
    if (admitted) {
      this.log.warn({ device: deviceId, reason: d.reason, detail: d.detail, raw: d.raw, suppressed: admitted.suppressed },
        'serial line discarded');
    }
  }

  private deliver(deviceId: string, frames: DeviceFrame[]): void {
    this.opts.sink.ingest(deviceId, frames, this.linkFor(deviceId)).catch((err: unknown) => {
      const admitted = this.discardLog.admit('ingest-failed');
      if (admitted) this.log.error({ device: deviceId, err: errorText(err), suppressed: admitted.suppressed }, 'ingest failed');
    });
  }

  private identify(): void {
    this.identifyTimer = null;
    if (this.state !== 'open' || this.identified || !this.port) return;
    this.idCounter = (this.idCounter + 1) % 36 ** 6;
    // ICD §1: cmd_id is 1–8 of [A-Za-z0-9]; `id` + 6 base-36 digits keeps clear of the command service's ids.
    const cmd: Command = { cmdId: `id${this.idCounter.toString(36).padStart(6, '0')}`, verb: 'ID', args: [] };
    this.identifySent++;
    if (this.identifySent === 1) this.log.info('no HELLO after opening; asking with CMD ID');
    this.write(this.port, cmd).catch((err: unknown) => this.log.debug({ err: errorText(err) }, 'CMD ID write failed'));
    this.identifyTimer = this.clock.setTimeout(() => this.identify(), this.identifyBackoff.next());
  }

  private linkFor(deviceId: string): DeviceLink {
    let link = this.links.get(deviceId);
    if (!link) {
      link = { kind: 'serial', source: this.opts.path, send: (cmd) => this.sendTo(deviceId, cmd) };
      this.links.set(deviceId, link);
    }
    return link;
  }

  private sendTo(deviceId: string, cmd: Command): Promise<void> {
    const port = this.port;
    if (this.state !== 'open' || !port) {
      return Promise.reject(new Error(`serial ${this.opts.path}: port not open, command ${cmd.cmdId} not sent`));
    }
    // A command must never reach another console: after a reopen or a swap, wait for the HELLO that says who
    // is on the port (ICD §1).
    if (!this.identified || this.deviceId !== deviceId) {
      const who = this.identified ? `console ${this.deviceId}` : 'an unidentified console';
      return Promise.reject(new Error(`serial ${this.opts.path}: ${deviceId} is not on this port now (${who}), command ${cmd.cmdId} not sent`));
    }
    return this.write(port, cmd);
  }

  private write(port: SerialPortStream, cmd: Command): Promise<void> {
    return new Promise((resolve, reject) => {
      port.write(encodeCommand(cmd), (err) => {
        if (err) return reject(err);
        port.drain((drainErr) => (drainErr ? reject(drainErr) : resolve()));
      });
    });
  }
}

/**
 * The console's RS-232 port (ICD §1: 115200 8N1, no flow control). Frames go out CRC-framed, `$CMD`
 * lines come in through LineSplitter + decodeCommandLine. Line faults (link drop, garbage, bad CRC)
 * happen here, below the console, as they would on a real cable.
 */
import type { Logger } from 'pino';
import { SerialPort } from 'serialport';
import { LineSplitter } from '../../src/protocol/lineSplitter.js';
import type { SplitterOutput } from '../../src/protocol/lineSplitter.js';
import { decodeCommandLine, encodeDeviceFrame } from '../../src/protocol/serial.js';
import type { SimAction } from './actions.js';
import { DEFAULT_DECIMALS } from './channels.js';
import type { ConsoleFrame, SimulatedConsole } from './console.js';
import type { FrameLedger } from './ledger.js';
import type { PeerGate } from './pty.js';
import type { Rng } from './rng.js';

export interface SimLink {
  start(): Promise<void>;
  /** Safe twice. */
  stop(): Promise<void>;
  /** link_drop, garbage_bytes, bad_crc; power_cycle too (what losing power does to the link). */
  applyLinkAction(a: SimAction): void;
}

export interface SerialLinkOptions {
  /** The device end of the line, e.g. a socat pty. */
  path: string;
  console: SimulatedConsole;
  ledger: FrameLedger;
  /** Noise source for garbage bytes (its own stream, so garbage does not shift the telemetry noise). */
  rng: Rng;
  log: Logger;
  /** Whether the far end is open (our own pty pair); absent = a cable that is always plugged in. */
  peer?: PeerGate;
}

/**
 * A UART has a small FIFO and no reader to wait for: past this many bytes queued (nobody reads the
 * other end of a pty) frames are dropped as the real line would lose them, instead of queueing stale
 * frames without bound.
 */
const MAX_QUEUED_BYTES = 4096;
const REOPEN_RETRY_MS = 500;
/** The opener's own tcflush runs right after open(); frames wait this long past it. */
const PEER_SETTLE_MS = 100;
/**
 * stop() lets the UART finish what is queued (at most MAX_QUEUED_BYTES, ~0.4 s at 115200 baud) before it
 * closes the port; a line nobody reads never empties, so past this the rest is cut off instead of hanging.
 */
const STOP_FLUSH_MAX_MS = 2000;

export class SerialLink implements SimLink {
  private port: SerialPort | null = null;
  private unsubscribe: (() => void) | null = null;
  private down = false;
  private stopped = false;
  private badCrcPending = 0;
  private lastTelemetryLine = '';
  private reopenTimer: NodeJS.Timeout | null = null;
  private peerOpen: boolean;
  private settleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: SerialLinkOptions) {
    this.peerOpen = opts.peer === undefined;
  }

  async start(): Promise<void> {
    await this.open();
    this.unsubscribe = this.opts.console.onFrame((f) => this.send(f));
    this.opts.peer?.start((open) => this.peerChanged(open));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.opts.peer?.stop();
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    if (this.settleTimer) clearTimeout(this.settleTimer);
    // Frames the ledger counts as sent may still be queued in the port: closing now would throw them away.
    await this.flush();
    await this.close();
  }

  applyLinkAction(a: SimAction): void {
    const stats = this.opts.ledger.device(this.opts.console.deviceId);
    switch (a.action) {
      case 'link_drop': {
        stats.linkDrops++;
        this.down = true;
        void this.close();
        // ICD §1: HELLO after the link is (re)opened.
        const restore = (): void => {
          this.down = false;
          void this.reopen();
        };
        if (a.durationMs !== undefined) this.opts.console.schedule(this.opts.console.simNow + a.durationMs, restore);
        return;
      }
      case 'garbage_bytes':
        this.writeGarbage(a.params.count, a.params.mode);
        return;
      case 'bad_crc':
        this.badCrcPending += a.params.count;
        return;
      case 'power_cycle':
        // The UART just goes silent while the console is off; the line itself stays.
        return;
      default:
        throw new Error(`${a.action} is not a link action`);
    }
  }

  private send(frame: ConsoleFrame): void {
    const { ledger, console: c } = this.opts;
    const port = this.port;
    if (this.down || !this.peerOpen || !port?.isOpen || port.writableLength > MAX_QUEUED_BYTES) {
      ledger.note(c.deviceId, frame, 'dropped');
      return;
    }
    let line = encodeDeviceFrame(frame, DEFAULT_DECIMALS);
    if (frame.type === 'T') this.lastTelemetryLine = line;
    // bad_crc hits telemetry only, so the gateway sees seq gaps and discards but no lost ACK.
    if (frame.type === 'T' && this.badCrcPending > 0) {
      this.badCrcPending--;
      line = corruptCrc(line);
      ledger.note(c.deviceId, frame, 'corrupted');
    } else {
      ledger.note(c.deviceId, frame, 'sent');
    }
    port.write(line, 'latin1');
  }

  /**
   * Garbage always ends with CR LF, so it is its own line(s) and the next frame arrives whole: the
   * gateway's discard counters then match what was injected, and no real frame is lost to it.
   */
  private writeGarbage(count: number, mode: 'binary' | 'partial'): void {
    const port = this.port;
    if (this.down || !this.peerOpen || !port?.isOpen) return;
    let bytes: Buffer;
    if (mode === 'partial' && this.lastTelemetryLine.length > 3) {
      // The tail of a frame without its `$`: what a receiver sees after a cable re-plug.
      const tail = this.lastTelemetryLine.slice(1, -2);
      bytes = Buffer.from(tail.slice(Math.max(0, tail.length - count)) + '\r\n', 'latin1');
    } else {
      const raw = Buffer.alloc(count);
      for (let i = 0; i < count; i++) {
        let b = this.opts.rng.int(0, 255);
        while (b === 0x0a || b === 0x24) b = this.opts.rng.int(0, 255); // no '\n', no '$'
        raw[i] = b;
      }
      bytes = Buffer.concat([raw, Buffer.from('\r\n')]);
    }
    this.opts.ledger.device(this.opts.console.deviceId).garbageBytes += bytes.length;
    port.write(bytes);
  }

  private async open(): Promise<void> {
    const port = new SerialPort({
      path: this.opts.path, baudRate: 115200, dataBits: 8, parity: 'none', stopBits: 1, rtscts: false, autoOpen: false,
    });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    const splitter = new LineSplitter();
    port.pipe(splitter);
    splitter.on('data', (out: SplitterOutput) => this.onLine(out));
    port.on('error', (err) => this.opts.log.warn({ err: err.message, path: this.opts.path }, 'serial port error'));
    this.port = port;
  }

  private onLine(out: SplitterOutput): void {
    const stats = this.opts.ledger.device(this.opts.console.deviceId);
    if (this.down) return;
    if (!this.peerOpen) {
      // Bytes from the gateway prove its end is open, sooner than the watcher can tell.
      if (this.settleTimer) clearTimeout(this.settleTimer);
      this.settleTimer = null;
      this.peerOpen = true;
      this.sendHello();
    }
    if (out.kind === 'too_long') {
      stats.commandsDiscarded++;
      return;
    }
    const decoded = decodeCommandLine(out.line);
    if (decoded.type === 'discard') stats.commandsDiscarded++;
    else stats.commandsReceived++;
    this.opts.console.receive(decoded);
  }

  /** Waits until every write queued so far has reached the OS and the OS has sent it (tcdrain). */
  private async flush(): Promise<void> {
    const port = this.port;
    if (!port?.isOpen) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        port.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, STOP_FLUSH_MAX_MS);
      port.once('close', done); // a write queued on a port that closed meanwhile never calls back
      // Write callbacks run in order: an empty write's runs once every write queued before it is done.
      port.write(Buffer.alloc(0), () => port.drain(() => done()));
    });
  }

  private async close(): Promise<void> {
    const port = this.port;
    this.port = null;
    if (!port?.isOpen) return;
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  /** The gateway opened or closed its end: a cable plugged or pulled; HELLO once it is back (ICD §1). */
  private peerChanged(open: boolean): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    if (!open) {
      this.peerOpen = false;
      return;
    }
    if (this.peerOpen) return;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.peerOpen = true;
      this.sendHello();
    }, PEER_SETTLE_MS);
  }

  private sendHello(): void {
    const port = this.port;
    if (this.down || !this.peerOpen || !port?.isOpen) return;
    const { console: c, ledger } = this.opts;
    const hello = c.hello();
    ledger.note(c.deviceId, hello, 'sent');
    port.write(encodeDeviceFrame(hello), 'latin1');
  }

  private async reopen(): Promise<void> {
    if (this.stopped || this.down) return;
    try {
      await this.open();
      this.sendHello();
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message, path: this.opts.path }, 'serial reopen failed; retrying');
      this.reopenTimer = setTimeout(() => void this.reopen(), REOPEN_RETRY_MS);
    }
  }
}

/** Same frame, CRC flipped: the receiver must discard it (ICD §1). */
export function corruptCrc(line: string): string {
  const star = line.lastIndexOf('*');
  const crc = parseInt(line.slice(star + 1, star + 5), 16);
  const wrong = ((crc ^ 0x5a5a) & 0xffff).toString(16).toUpperCase().padStart(4, '0');
  return line.slice(0, star + 1) + wrong + line.slice(star + 5);
}

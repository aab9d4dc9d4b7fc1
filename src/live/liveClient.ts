/**
 * One live-stream client and its flow control: a slow client never slows the gateway or the others.
 * Below the soft bound every message goes straight to the socket. At or above it the client is conflated:
 * telemetry is held, latest sample per device, and sent when the socket drains; state, link, alarm, event and
 * command results are never dropped (the held telemetry goes out just before them, so order is kept). A
 * client that stays above the hard bound for `hardMs` is closed with 1013 (try again later).
 */
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/roles.js';
import { conflatedMessage } from './messages.js';

export interface FlowLimits {
  /** Socket backlog (bytes) at which telemetry starts to be conflated. */
  softBytes: number;
  /** Backlog under which a conflated client gets full-rate telemetry again. */
  lowBytes: number;
  /** Backlog that, held for hardMs, disconnects the client. */
  hardBytes: number;
  hardMs: number;
}

/** A message encoded once (UTF-8 JSON) and shared by every client's socket queue. */
export type Frame = Buffer | string;

/** auth: a wrong token or role; auth_timeout: none within the deadline; busy: authenticated past the client cap. */
export type DisconnectReason = 'closed' | 'heartbeat' | 'slow' | 'auth' | 'auth_timeout' | 'busy' | 'revoked' | 'stopping' | 'error';

export class LiveClient {
  principal: Principal | null = null;
  /** The peer's address, for the log of refused tokens. */
  source: string | undefined = undefined;
  /** Every device, present and future. */
  subscribedAll = false;
  readonly devices = new Set<string>();
  missedPongs = 0;
  /** Device → its latest held telemetry message, while conflated. */
  private held: Map<string, Frame> | null = null;
  private droppedWhileConflated = 0;
  private overHardSince: number | null = null;
  closing: DisconnectReason | null = null;

  constructor(
    readonly ws: WebSocket,
    readonly id: number,
    private readonly limits: FlowLimits,
    /** Counters of the hub: conflation episodes and telemetry samples conflated away. */
    private readonly stats: { conflations: number; dropped: number; sent: number },
  ) {}

  get conflated(): boolean {
    return this.held !== null;
  }

  wants(deviceId: string): boolean {
    return this.principal !== null && (this.subscribedAll || this.devices.has(deviceId));
  }

  /** Any message that must arrive: held telemetry first, then this. */
  sendPriority(msg: Frame): void {
    if (this.held) this.flushHeld();
    this.write(msg);
  }

  sendTelemetry(deviceId: string, msg: Frame, subscribedDevices: () => string[]): void {
    const backlog = this.ws.bufferedAmount;
    if (this.held) {
      if (backlog <= this.limits.lowBytes) {
        this.leaveConflation();
      } else {
        if (this.held.has(deviceId)) {
          this.droppedWhileConflated++;
          this.stats.dropped++;
        }
        this.held.set(deviceId, msg);
        return;
      }
    } else if (backlog >= this.limits.softBytes) {
      this.held = new Map([[deviceId, msg]]);
      this.droppedWhileConflated = 0;
      this.stats.conflations++;
      this.write(conflatedMessage(true, subscribedDevices()));
      return;
    }
    this.write(msg);
  }

  /**
   * Called on the hub's flow tick: resumes a conflated client whose socket drained, and reports whether it has
   * been above the hard bound for longer than allowed.
   */
  tick(now: number): 'ok' | 'too_slow' {
    const backlog = this.ws.bufferedAmount;
    if (this.held && backlog <= this.limits.lowBytes) this.leaveConflation();
    if (backlog >= this.limits.hardBytes) {
      this.overHardSince ??= now;
      if (now - this.overHardSince >= this.limits.hardMs) return 'too_slow';
    } else {
      this.overHardSince = null;
    }
    return 'ok';
  }

  private leaveConflation(): void {
    this.flushHeld();
    const dropped = this.droppedWhileConflated;
    this.held = null;
    this.write(conflatedMessage(false, [], dropped));
  }

  private flushHeld(): void {
    const held = this.held!;
    for (const msg of held.values()) this.write(msg);
    held.clear();
  }

  private write(msg: Frame): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    // binary:false sends a text frame; a server frame is unmasked, so ws queues the shared Buffer without a copy.
    this.ws.send(msg, { binary: false });
    this.stats.sent++;
  }
}

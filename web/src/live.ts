/**
 * The WebSocket to `/ws` (subprotocols `msc.v1` + `bearer.<token>`, docs/security.md). It reconnects by
 * itself with backoff; while it is down the screens say DISCONNECTED and every value is stale. The messages are
 * the gateway's own types (src/live/protocol.ts, types only: nothing of the server enters the bundle).
 */
import type { ClientMessage, ServerMessage } from '../../src/live/protocol.js';

export type { ClientMessage, LiveMessage, ReplayMessage, ServerMessage } from '../../src/live/protocol.js';
export type ConnectionState = 'connecting' | 'open' | 'closed' | 'unauthorized';

export class LiveConnection {
  private ws: WebSocket | null = null;
  private retryMs = 500;
  private timer: number | null = null;
  private stopped = false;
  state: ConnectionState = 'connecting';
  role: string | null = null;
  onMessage: (m: ServerMessage) => void = () => {};
  onState: (s: ConnectionState) => void = () => {};
  /** Sent again after every (re)connect, once welcomed (subscriptions). */
  private onWelcome: Array<() => void> = [];

  constructor(private readonly tokenOf: () => string | null) {}

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.ws?.close(1000, 'signed out');
    this.ws = null;
  }

  /** Runs `fn` now when open and after every (re)connect; returns what stops that. */
  whenWelcomed(fn: () => void): () => void {
    this.onWelcome.push(fn);
    if (this.state === 'open') fn();
    return () => {
      this.onWelcome = this.onWelcome.filter((f) => f !== fn);
    };
  }

  send(msg: ClientMessage): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  private setState(s: ConnectionState): void {
    this.state = s;
    this.onState(s);
  }

  private connect(): void {
    const token = this.tokenOf();
    if (!token || this.stopped) return;
    this.setState('connecting');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, ['msc.v1', `bearer.${token}`]);
    } catch {
      return this.retry();
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      let m: ServerMessage;
      // The gateway sends only protocol.ts messages; a screen ignores a type it does not know.
      try { m = JSON.parse(String(ev.data)) as ServerMessage; } catch { return; }
      if (m.type === 'welcome') {
        this.retryMs = 500;
        this.role = m.role;
        this.setState('open');
        for (const fn of this.onWelcome) fn();
        return;
      }
      this.onMessage(m);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 4401 || ev.code === 4403) return this.setState('unauthorized');
      this.setState('closed');
      this.retry();
    };
  }

  private retry(): void {
    if (this.stopped) return;
    this.timer = window.setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 5000);
  }
}

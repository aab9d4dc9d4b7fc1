/**
 * The HTTP side of a live-stream upgrade: where the token comes from, which subprotocol is echoed, and how a
 * refused upgrade is answered (a plain HTTP response on the raw socket, then close).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { bearerToken } from '../auth/tokenHash.js';
import { BEARER_PROTOCOL_PREFIX, LIVE_PROTOCOL } from './messages.js';

/** `Authorization: Bearer TOKEN`, else a `bearer.TOKEN` subprotocol (browsers cannot set headers), else null. */
export function upgradeToken(req: IncomingMessage): string | null {
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const fromProtocol = offered.find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX))?.slice(BEARER_PROTOCOL_PREFIX.length);
  return bearerToken(req.headers.authorization) ?? (fromProtocol || null);
}

/** Echo a protocol the client offered, never the bearer one: that would put the token in a response header. */
export function chooseProtocol(offered: Set<string>): string | false {
  if (offered.has(LIVE_PROTOCOL)) return LIVE_PROTOCOL;
  for (const p of offered) if (!p.startsWith(BEARER_PROTOCOL_PREFIX)) return p;
  return false;
}

export function rejectUpgrade(socket: Duplex, status: number, error: string, message: string): void {
  const body = JSON.stringify({ error, message });
  const reason = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error';
  const extra = status === 401 ? 'WWW-Authenticate: Bearer realm="msc-gateway"\r\n' : '';
  socket.on('error', () => {}); // the client may be gone already; nothing to do about it
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\n${extra}`
    + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, () => socket.destroy());
}

/**
 * The HTTP side of a live-stream upgrade: where the token comes from, which subprotocol is echoed, and how a
 * refused upgrade is answered (a plain HTTP response on the raw socket, then close).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { bearerToken } from '../auth/tokenHash.js';
import { errorBody, statusOf, type ErrorCode } from '../errors.js';
import { BEARER_PROTOCOL_PREFIX, LIVE_PROTOCOL } from './messages.js';
import { normaliseOrigin } from '../util/origin.js';

export { normaliseOrigin };

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

/**
 * Whether a browser may open the stream from the page it is on: no Origin header (not a browser: CI tools, the
 * bench, `ws` clients; they still need a token), the gateway's own origin (the Origin's host and port are the
 * Host header's: the web UI), or one of `allowed` (normalised origins, e.g. a TLS proxy that rewrites Host).
 * Anything else, `null` included (sandboxed pages, file://), is refused.
 */
export function originAllowed(req: IncomingMessage, allowed: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  let page: URL;
  try {
    page = new URL(origin);
  } catch {
    return false;
  }
  if (page.protocol !== 'http:' && page.protocol !== 'https:') return false;
  if (allowed.has(page.origin)) return true;
  const host = req.headers.host;
  if (!host) return false;
  try {
    // Parsed with the page's scheme, so a default port left out on either side compares equal.
    return new URL(`${page.protocol}//${host}`).host === page.host;
  } catch {
    return false;
  }
}

/** The HTTP API's error body and status (src/errors.ts), written on the raw socket. */
export function rejectUpgrade(socket: Duplex, error: ErrorCode, message: string): void {
  const status = statusOf(error);
  const body = JSON.stringify(errorBody(error, message));
  const reason = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status] ?? 'Error';
  const extra = status === 401 ? 'WWW-Authenticate: Bearer realm="msc-gateway"\r\n' : '';
  socket.on('error', () => {}); // the client may be gone already; nothing to do about it
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\n${extra}`
    + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, () => socket.destroy());
}

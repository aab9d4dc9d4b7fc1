/** REST calls with the signed-in token (`Authorization: Bearer`); the token lives in sessionStorage only. */
const KEY = 'msc.token';

export type Role = 'viewer' | 'operator' | 'engineer' | 'admin';
const RANK: Record<string, number> = { viewer: 1, operator: 2, engineer: 3, admin: 4 };
export function roleAtLeast(role: string | null, needed: Role): boolean {
  return (RANK[role ?? ''] ?? 0) >= RANK[needed];
}

export function token(): string | null {
  return sessionStorage.getItem(KEY);
}
export function setToken(t: string | null): void {
  if (t === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, t);
}

export class ApiError extends Error {
  /** The response's headers (e.g. `retry-after` on 423 signing_locked), when there was a response. */
  constructor(readonly status: number, message: string, readonly body: unknown, readonly headers: Headers | null = null) {
    super(message);
  }
}

export async function api<T = any>(path: string, init: { method?: string; body?: unknown; tokenOverride?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${init.tokenOverride ?? token() ?? ''}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await r.text();
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  if (!r.ok) throw new ApiError(r.status, (body && body.message) || `${r.status} ${r.statusText}`, body, r.headers);
  return body as T;
}

/**
 * Downloads a protected file: a link cannot carry the bearer header, so fetch it and hand over a blob.
 * Resolves with the response's headers once the file is handed to the browser.
 */
export async function download(path: string, fallbackName: string): Promise<Headers> {
  const r = await fetch(path, { headers: { authorization: `Bearer ${token() ?? ''}` } });
  if (!r.ok) {
    const text = await r.text();
    let body: any = text;
    try { body = JSON.parse(text); } catch { /* text */ }
    throw new ApiError(r.status, (body && body.message) || `${r.status} ${r.statusText}`, body, r.headers);
  }
  const name = /filename="([^"]+)"/.exec(r.headers.get('content-disposition') ?? '')?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return r.headers;
}

/**
 * Bearer tokens: 32 random bytes, base64url (43 characters). Only their SHA-256 is stored: a token has
 * 256 bits of entropy, so a fast hash is enough (no password stretching needed) and a leaked tokens.json
 * does not let anyone in.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_BYTES = 32;
/** Longer presented strings are refused before hashing (a header can be up to 16 KiB). */
export const TOKEN_MAX_CHARS = 512;
export const SHA256_HEX_RE = /^[0-9a-f]{64}$/;

export function generateToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Lower-case hex SHA-256 of the token's UTF-8 bytes. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Constant-time equality of two SHA-256 digests (raw 32-byte buffers): the time does not depend on where
 * they first differ.
 */
export function digestsEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The token out of an `Authorization: Bearer TOKEN` header (RFC 6750 §2.1; scheme case-insensitive),
 * or null when absent or not of that form.
 */
export function bearerToken(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)[ ]*$/i.exec(header);
  return m && m[1].length <= TOKEN_MAX_CHARS ? m[1] : null;
}

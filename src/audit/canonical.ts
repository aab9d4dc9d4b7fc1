/**
 * Canonical serialisation and hashing of audit records. The hash must come out the same on every machine
 * and every Node version for as long as the trial's records are kept, so it depends only on JSON text
 * with sorted keys and SHA-256 (FIPS 180-4).
 */
import { createHash } from 'node:crypto';

/** 64 zeros: the `prev_hash` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level; undefined members dropped; non-finite numbers as null. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : sortKeys(v)));
  if (value !== null && typeof value === 'object') {
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return sortKeys((value as { toJSON(): unknown }).toJSON());
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** The stored columns that the hash covers, in their stored form (detail as its stored JSON text). */
export interface HashedFields {
  id: number;
  at: number;
  user: string;
  role: string;
  device: string | null;
  session: string | null;
  action: string;
  detail: string;
  outcome: string;
  prevHash: string;
}

/**
 * SHA-256 (hex) of a fixed-order JSON array of the record's fields. An array of primitives has exactly one
 * JSON text, and the id and prev_hash are inside it, so an edited, renumbered or moved record changes its hash.
 */
export function recordHash(f: HashedFields): string {
  const text = JSON.stringify([
    'msc-audit-v1', f.id, f.at, f.user, f.role, f.device, f.session, f.action, f.detail, f.outcome, f.prevHash,
  ]);
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

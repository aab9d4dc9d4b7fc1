/**
 * The hash a signature binds: SHA-256 (hex) of the record's canonical JSON (src/audit/canonical.ts: keys sorted at
 * every level, no whitespace). Anyone can recompute it from `GET /api/sessions/:id/record` (docs/engineer.md,
 * "Perfusion record").
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/canonical.js';
import type { PerfusionRecord } from './types.js';

export function recordSha256(r: PerfusionRecord): string {
  return createHash('sha256').update(canonicalJson(r), 'utf8').digest('hex');
}

/**
 * RecordService: a session's perfusion record (build.ts) with what was done to it, read from the hash-chained
 * audit trail: the signature manifest (`record.signed` records of this session) and the amendments (annotations
 * and participant-code changes written after the first signature, with their reasons). Reading signatures from
 * the audit trail only means `msc-gateway audit verify` covers them.
 *
 * The journal may be away (unwritable or full disk): reads then throw StorageUnavailableError (503).
 */
import type { SessionRecord } from '../sessions/types.js';
import { tableExists } from '../sessions/records.js';
import type { Db } from '../storage/schema.js';
import { StorageUnavailableError } from '../storage/types.js';
import { buildPerfusionRecord, type RecordSite } from './build.js';
import { recordSha256 } from './hash.js';
import { formatLocal } from './time.js';
import {
  SIGNATURE_MEANINGS, type PerfusionRecord, type RecordAmendment, type RecordSignature, type RecordView,
  type SignatureMeaning,
} from './types.js';

/** Audit actions that change what a signed record contains (the contract of the signing helper). */
export const AMENDING_ACTIONS: readonly string[] = ['annotation.add', 'session.participant'];
export const SIGNED_ACTION = 'record.signed';

export interface RecordServiceOptions {
  /** The journal's current handle, or null while it cannot be opened. */
  database: () => Db | null;
  site: RecordSite;
  now: () => number;
}

interface AuditRow {
  id: number; at: number; user: string; role: string; action: string; outcome: string; detail: string;
}

const TEXT_IN_SUMMARY = 80;

export class RecordService {
  constructor(private readonly opts: RecordServiceOptions) {}

  get site(): RecordSite {
    return this.opts.site;
  }

  /** The record as it stands now and its SHA-256: what a signature made now binds. */
  async current(rec: SessionRecord): Promise<{ record: PerfusionRecord; sha256: string }> {
    const record = await buildPerfusionRecord(() => this.db(), rec, { site: this.opts.site, now: this.opts.now() });
    return { record, sha256: recordSha256(record) };
  }

  /** The record, its hash, its signatures and the amendments made after the first one. */
  async view(rec: SessionRecord): Promise<RecordView> {
    const { record, sha256 } = await this.current(rec);
    const rows = this.auditOf(rec);
    const zone = this.opts.site.timeZone;
    const signatures: RecordSignature[] = [];
    for (const r of rows) {
      if (r.action !== SIGNED_ACTION || r.outcome !== 'signed') continue;
      const d = JSON.parse(r.detail) as Record<string, unknown>;
      // The signing service writes only well-formed details; anything else is not a signature of this record.
      if (d.sessionKey !== rec.key || !isMeaning(d.meaning) || typeof d.recordSha256 !== 'string') continue;
      signatures.push({
        auditId: r.id, user: r.user, printedName: typeof d.printedName === 'string' ? d.printedName : r.user, role: r.role,
        meaning: d.meaning, at: r.at, atUtc: new Date(r.at).toISOString(), atLocal: formatLocal(r.at, zone),
        recordSha256: d.recordSha256, changedSince: d.recordSha256 !== sha256,
      });
    }
    const firstSigned = signatures.length > 0 ? signatures[0].auditId : null;
    const amendments: RecordAmendment[] = [];
    if (firstSigned !== null) {
      for (const r of rows) {
        if (r.id <= firstSigned || !AMENDING_ACTIONS.includes(r.action)) continue;
        const d = JSON.parse(r.detail) as Record<string, unknown>;
        // A participant code belongs to one session record; the same id may have run again on this console.
        if (r.action === 'session.participant' && d.key !== rec.key) continue;
        amendments.push({
          auditId: r.id, at: r.at, user: r.user, role: r.role, action: r.action,
          summary: amendmentSummary(r.action, d, zone), reason: typeof d.reason === 'string' && d.reason.trim() ? d.reason : '(none given)',
        });
      }
    }
    return {
      record, sha256, signatures, amendments,
      changedSinceSigned: signatures.some((s) => s.changedSince),
      generatedAt: new Date(this.opts.now()).toISOString(),
    };
  }

  /** Signature and amendment records of the session, in id (chain) order. */
  private auditOf(rec: SessionRecord): AuditRow[] {
    const db = this.db();
    if (!tableExists(db, 'audit')) return [];
    const actions = [SIGNED_ACTION, ...AMENDING_ACTIONS];
    return db.prepare(`SELECT id, at, user, role, action, outcome, detail FROM audit
        WHERE device = ? AND session = ? AND action IN (${actions.map(() => '?').join(', ')}) ORDER BY id`)
      .all(rec.device, rec.sessionId, ...actions) as AuditRow[];
  }

  private db(): Db {
    const db = this.opts.database();
    if (!db) throw new StorageUnavailableError('perfusion records unavailable: the journal cannot be opened (see /healthz)');
    return db;
  }
}

const isMeaning = (m: unknown): m is SignatureMeaning => (SIGNATURE_MEANINGS as readonly unknown[]).includes(m);

function clip(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > TEXT_IN_SUMMARY ? `${one.slice(0, TEXT_IN_SUMMARY - 1)}\u2026` : one;
}

/** A short description of what an amending audit record changed. */
export function amendmentSummary(action: string, d: Record<string, unknown>, timeZone: string): string {
  if (action === 'session.participant') {
    return `participant code ${typeof d.previous === 'string' ? d.previous : '(none)'} \u2192 ${String(d.code)}`;
  }
  if (action === 'annotation.add') {
    const kind = String(d.kind ?? 'note').replace(/_/g, ' ');
    const sub = typeof d.subtype === 'string' ? ` (${d.subtype.replace(/_/g, ' ')})` : '';
    const at = typeof d.t === 'number' ? ` at ${formatLocal(d.t, timeZone)}` : '';
    return `${kind}${sub} added${at}: "${clip(String(d.text ?? ''))}"`;
  }
  return action;
}

/**
 * Alarm-limit and rule changes made at run time (engineer role, audited) survive a restart: the
 * profile document they produce (the rule language of docs/alarms.md) is kept in `<dataDir>/alarm-profile.json`,
 * written atomically, and applied at start on top of the configuration's profile (`config.alarms.profile` or
 * the default). A file that cannot be used never stops the gateway: it is moved aside, the configuration's
 * profile is used, and the problem is logged at error level and reported (`problem`, `onProblem`): the gateway
 * raises ALARM_PROFILE (HIGH), because the limits in force are then not the ones the engineer set and the
 * bedside must know. The problem stands, across restarts, until an engineer confirms it (`confirm()`) or saves
 * a new profile: a set-aside file is `<file>.corrupt-<ts>` until then, `<file>.corrupt-<ts>.confirmed` after.
 */
import { readdirSync, readFileSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../util/atomicFile.js';
import { parseProfile, ProfileFileSchema, type AlarmProfile, type ProfileResult } from './rules.js';

/** A profile document as accepted by `parseProfile`: `{defaults?, models?, devices?, technical?}`. */
export type ProfileDocument = z.output<typeof ProfileFileSchema>;

/** Who made the document in force, and why (also in the audit trail; kept here for whoever opens the file). */
export interface ProfileChange {
  changedBy: string;
  reason: string;
}

const StoredSchema = z.object({
  format: z.literal(1),
  profile: z.unknown(),
  changedAt: z.number().optional(),
  changedBy: z.string().optional(),
  reason: z.string().optional(),
});

export interface AlarmProfileStoreOptions {
  dataDir: string;
  /** The configuration's profile: the stored document applies on top of it. */
  base: AlarmProfile;
  logger: Logger;
  fileName?: string;
  now?: () => number;
}

export class AlarmProfileStore {
  readonly file: string;
  private document: ProfileDocument = {};
  private problem: string | null = null;
  private listener: ((problem: string | null) => void) | null = null;

  constructor(private readonly opts: AlarmProfileStoreOptions) {
    this.file = join(opts.dataDir, opts.fileName ?? 'alarm-profile.json');
  }

  /** Called with the problem now (at once) and whenever it changes (null: confirmed or fixed). */
  onProblem(listener: (problem: string | null) => void): void {
    this.listener = listener;
    listener(this.problem);
  }

  /**
   * An engineer has seen the problem and accepts the profile in force: the set-aside files are marked
   * confirmed and the problem is cleared. Returns what was confirmed, or null when there was nothing to confirm.
   */
  confirm(): string | null {
    const problem = this.problem;
    if (problem === null) return null;
    this.markSetAsideConfirmed();
    this.setProblem(null);
    return problem;
  }

  /** The configuration's profile, without the run-time document. */
  get base(): AlarmProfile {
    return this.opts.base;
  }

  /** Why the stored changes are not in force (from load(), until confirmed or fixed), or null. */
  get loadProblem(): string | null {
    return this.problem;
  }

  /**
   * Reads the stored document and returns the profile to run with: the base with the document applied, or the
   * base alone when there is no file or it cannot be used (then moved to `<file>.corrupt-<ts>`, logged at error).
   */
  load(): AlarmProfile {
    this.document = {};
    this.problem = null;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // Set aside at an earlier start and not yet confirmed: the configured profile still runs in its place.
        const pending = this.setAsideUnconfirmed();
        if (pending.length > 0) {
          this.problem = `stored alarm profile changes were set aside as unusable (${pending.join(', ')}) and are not in force;`
            + ' the configured profile runs until an engineer confirms it or saves a new profile';
          this.opts.logger.error({ file: this.file, setAside: pending }, 'stored alarm profile changes NOT applied (set aside earlier, not confirmed)');
        }
        return this.opts.base;
      }
      // Unreadable (permissions, I/O): left in place, it may be readable again after the fault is fixed.
      return this.unusable(`cannot read ${this.file}: ${(err as Error).message}`, false);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      return this.unusable(`${this.file} is not JSON: ${(err as Error).message}`, true);
    }
    const stored = StoredSchema.safeParse(raw);
    if (!stored.success) {
      const i = stored.error.issues[0];
      return this.unusable(`${this.file} has an unexpected shape: ${i?.path.join('.') || '(root)'}: ${i?.message}`, true);
    }
    const r = this.resolve(stored.data.profile);
    if (!r.ok) {
      const errors = r.errors.map((e) => `profile.${e}`).join('; ');
      return this.unusable(`${this.file} is not a valid alarm profile on top of the configured one: ${errors}`, true);
    }
    this.document = ProfileFileSchema.parse(stored.data.profile ?? {});
    this.opts.logger.info({ file: this.file, changedBy: stored.data.changedBy, changedAt: stored.data.changedAt },
      'alarm profile changes made at run time applied');
    return r.profile;
  }

  /** The document in force (a copy): `{}` when no change has been made. */
  current(): ProfileDocument {
    return structuredClone(this.document);
  }

  /** Validates a document on top of the configuration's profile (field paths in the errors). */
  resolve(document: unknown): ProfileResult {
    return parseProfile(document, this.opts.base);
  }

  /** Writes the document atomically; throws when it cannot be written (the change must then not be applied). */
  save(document: ProfileDocument, change: ProfileChange): void {
    const stored = { format: 1, changedAt: (this.opts.now ?? Date.now)(), ...change, profile: document };
    writeFileAtomic(this.file, JSON.stringify(stored, null, 2) + '\n');
    this.document = structuredClone(document);
    // A profile saved by an engineer replaces whatever was set aside: that is the fix.
    if (this.problem !== null) {
      this.markSetAsideConfirmed();
      this.setProblem(null);
    }
  }

  private setProblem(problem: string | null): void {
    this.problem = problem;
    this.listener?.(problem);
  }

  /** `<file>.corrupt-<ts>` files not yet confirmed. */
  private setAsideUnconfirmed(): string[] {
    const prefix = `${basename(this.file)}.corrupt-`;
    try {
      return readdirSync(dirname(this.file)).filter((f) => f.startsWith(prefix) && !f.endsWith('.confirmed')).sort();
    } catch {
      return [];
    }
  }

  private markSetAsideConfirmed(): void {
    for (const f of this.setAsideUnconfirmed()) {
      const path = join(dirname(this.file), f);
      try {
        renameSync(path, `${path}.confirmed`);
      } catch (err) {
        this.opts.logger.warn({ file: path, err: (err as Error).message }, 'could not mark a set-aside alarm profile as confirmed');
      }
    }
  }

  private unusable(problem: string, setAside: boolean): AlarmProfile {
    let message = problem;
    if (setAside) {
      // Kept for inspection: the next change would otherwise overwrite it.
      const aside = `${this.file}.corrupt-${(this.opts.now ?? Date.now)()}`;
      try {
        renameSync(this.file, aside);
        message += ` (moved to ${aside})`;
      } catch (err) {
        message += ` (could not be moved aside: ${(err as Error).message})`;
      }
    }
    this.setProblem(`${message}; the configured profile runs until an engineer confirms it or saves a new profile`);
    this.opts.logger.error({ file: this.file, problem: message },
      'stored alarm profile changes NOT applied: running with the configured alarm profile');
    return this.opts.base;
  }
}

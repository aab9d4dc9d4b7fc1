/**
 * The console's memory of command ids (ICD §1): a cmd_id repeated within 60 s is answered with the
 * first result and not executed twice; the unanswered_command fault loses a command and every retry.
 */
import type { AckResult } from '../../src/protocol/types.js';

export const IDEMPOTENCY_WINDOW_MS = 60_000;

interface Answered {
  simAt: number;
  wallAt: number;
  result: AckResult;
  detail: string;
}

export type CommandFate =
  | { kind: 'new' }
  | { kind: 'repeat'; result: AckResult; detail: string }
  | { kind: 'lost' };

export class CommandMemory {
  private readonly answered = new Map<string, Answered>();
  private readonly lost = new Set<string>();
  private loseBudget = 0;

  /**
   * What happens to `cmdId` arriving now.
   * ICD: "within 60 s" under --speed is ambiguous (device time runs faster than the sender's).
   * Safe reading: an id is forgotten only after 60 s of simulated AND real time, so a retry is never
   * executed twice. Lost ids (unanswered_command) stay lost: those commands never arrived.
   */
  fate(cmdId: string, simNow: number, wallNow: number): CommandFate {
    for (const [id, e] of this.answered) {
      if (simNow - e.simAt >= IDEMPOTENCY_WINDOW_MS && wallNow - e.wallAt >= IDEMPOTENCY_WINDOW_MS) this.answered.delete(id);
    }
    if (this.lost.has(cmdId)) return { kind: 'lost' };
    const first = this.answered.get(cmdId);
    if (first) return { kind: 'repeat', result: first.result, detail: first.detail };
    if (this.loseBudget > 0) {
      this.loseBudget--;
      this.lost.add(cmdId);
      return { kind: 'lost' };
    }
    return { kind: 'new' };
  }

  remember(cmdId: string, simNow: number, wallNow: number, result: AckResult, detail: string): void {
    this.answered.set(cmdId, { simAt: simNow, wallAt: wallNow, result, detail });
  }

  /** The next `count` new command ids are never answered, nor their retries. */
  loseNext(count: number): void {
    this.loseBudget += count;
  }

  /** Power-up: the device forgets what it answered (lost ids stay lost: they never arrived). */
  forgetAnswers(): void {
    this.answered.clear();
  }
}

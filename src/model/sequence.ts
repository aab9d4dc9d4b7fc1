/**
 * Sequence accounting per device (ICD §1 `seq`): one u32 counter over T, S and EV frames.
 * Frames lost on the way = (seq − last_seq − 1) mod 2^32.
 *
 * ICD ambiguity, safe reading: a frame whose seq is "behind" (the formula gives ≥ 2^31) is either a duplicate
 * (MQTT QoS 1 redelivery) or a frame that arrived late (MQTT carries telemetry, state and event on separate
 * topics). A ring of recently seen seqs tells them apart: a duplicate is dropped, a late frame is kept and
 * taken back out of the loss count. After a HELLO a backwards seq is a power-up restart (seq restarts at 0).
 */
const U32 = 2 ** 32;
const HALF = 2 ** 31;
const RING = 4096;

export type SeqVerdict = 'new' | 'gap' | 'late' | 'duplicate' | 'restart' | 'first';

export class SequenceTracker {
  private last: number | null = null;
  private readonly seen = new Float64Array(RING).fill(-1);
  private helloPending = false;
  /** Frames missing according to the formula, minus those that arrived late. */
  framesLost = 0;
  /** Number of jumps (each gap of ≥ 1 missing frame counts once). */
  gaps = 0;
  duplicates = 0;
  lastGap = 0;

  constructor(remembered: number | null = null) {
    this.last = remembered;
  }

  /** A HELLO arrived: the next backwards seq is a device restart, not a duplicate. */
  onHello(): void {
    this.helloPending = true;
  }

  get lastSeq(): number | null {
    return this.last;
  }

  accept(seq: number): SeqVerdict {
    const slot = seq % RING;
    if (this.last === null) {
      this.last = seq;
      this.seen[slot] = seq;
      this.helloPending = false;
      return 'first';
    }
    const missing = (seq - this.last - 1 + U32) % U32;
    if (missing >= HALF && this.helloPending) {
      this.helloPending = false;
      this.seen.fill(-1);
      this.last = seq;
      this.seen[slot] = seq;
      return 'restart';
    }
    if (this.seen[slot] === seq) {
      this.duplicates++;
      return 'duplicate';
    }
    if (missing >= HALF) {
      // Behind and not seen recently: a late frame, already counted as lost when the gap was seen.
      this.seen[slot] = seq;
      if (this.framesLost > 0) this.framesLost--;
      return 'late';
    }
    this.helloPending = false;
    this.last = seq;
    this.seen[slot] = seq;
    if (missing > 0) {
      this.gaps++;
      this.framesLost += missing;
      this.lastGap = missing;
      return 'gap';
    }
    return 'new';
  }
}

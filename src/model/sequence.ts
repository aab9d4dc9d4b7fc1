/**
 * Sequence accounting per device (ICD §1 `seq`): one u32 counter over T, S and EV frames.
 * Frames lost on the way = (seq − last_seq − 1) mod 2^32.
 *
 * ICD ambiguity, safe reading: a frame whose seq is "behind" (the formula gives ≥ 2^31) is either a duplicate
 * (MQTT QoS 1 redelivery) or a frame that arrived late (MQTT carries telemetry, state and event on separate
 * topics). A ring of recently seen seqs tells them apart: a duplicate is dropped, a late frame is kept and
 * taken back out of the loss count. After a HELLO a backwards seq is a power-up restart (seq restarts at 0).
 *
 * A jump no console could have made is not a loss: a seq further ahead than the ICD's fastest console could have
 * counted since the last frame (gateway time, see plausibleAhead), or further behind than the ring remembers, is
 * `implausible`. One forged or corrupted frame must not add two billion to the loss count, nor move the baseline
 * that every later frame is measured against. The frame is kept (it passed its decoder) and counted apart; the
 * baseline moves to it only when the next frame continues from it (a console that restarted without a HELLO,
 * or a journal memory that is wrong), and stays where it was when the next frame continues the old count.
 */
const U32 = 2 ** 32;
const HALF = 2 ** 31;
const RING = 4096;

/** ICD §1: telemetry at most 100 Hz, so a frame every 10 ms at the fastest; S and EV share the counter. */
export const SHORTEST_PERIOD_MS = 10;
/**
 * Frames a jump may hold whatever the elapsed time: a gateway that stalled reads what arrived meanwhile at
 * once, and what the serial buffer lost then shows as a gap with no gateway time between its two ends
 * (10 s at 100 Hz).
 */
export const SEQ_SLACK = 1000;

/** The most frames a console can have counted in `elapsedMs` of gateway time, with a margin of 2. */
export function plausibleAhead(elapsedMs: number): number {
  return Math.floor(Math.max(0, elapsedMs) / SHORTEST_PERIOD_MS) * 2 + SEQ_SLACK;
}

export type SeqVerdict = 'new' | 'gap' | 'late' | 'duplicate' | 'restart' | 'first' | 'implausible';

/** Where counting starts: the last seq and when the gateway received it (from the journal after a restart). */
export interface SeqBaseline {
  seq: number;
  rx: number;
}

export class SequenceTracker {
  private last: number | null = null;
  /** Gateway time of the frame that set `last`. */
  private lastRx = 0;
  /** The last implausible frame, adopted as the baseline if the next frame continues from it. */
  private candidate: SeqBaseline | null = null;
  private readonly seen = new Float64Array(RING).fill(-1);
  private helloPending = false;
  /** Frames missing according to the formula, minus those that arrived late. */
  framesLost = 0;
  /** Number of jumps (each gap of ≥ 1 missing frame counts once). */
  gaps = 0;
  duplicates = 0;
  /** Frames whose seq no console could have sent after the last one: neither lost frames nor gaps. */
  implausible = 0;
  lastGap = 0;

  constructor(remembered: SeqBaseline | null = null) {
    if (remembered) {
      this.last = remembered.seq;
      this.lastRx = remembered.rx;
    }
  }

  /** A HELLO arrived: the next backwards seq is a device restart, not a duplicate. */
  onHello(): void {
    this.helloPending = true;
  }

  get lastSeq(): number | null {
    return this.last;
  }

  /** `rx`: gateway time the frame was received, epoch ms. */
  accept(seq: number, rx: number): SeqVerdict {
    const slot = seq % RING;
    if (this.last === null) {
      this.rebase(seq, rx);
      return 'first';
    }
    const missing = (seq - this.last - 1 + U32) % U32;
    if (missing >= HALF && this.helloPending) {
      this.seen.fill(-1);
      this.rebase(seq, rx);
      return 'restart';
    }
    if (this.seen[slot] === seq) {
      this.duplicates++;
      return 'duplicate';
    }
    if (missing >= HALF) {
      if (U32 - missing <= RING) {
        // Behind and not seen recently: a late frame, already counted as lost when the gap was seen.
        this.seen[slot] = seq;
        if (this.framesLost > 0) this.framesLost--;
        return 'late';
      }
      // Further behind than the ring remembers: no late frame can be told from a duplicate there.
      return this.fromCandidate(seq, rx);
    }
    if (missing >= plausibleAhead(rx - this.lastRx)) return this.fromCandidate(seq, rx);
    return this.forward(seq, rx, missing);
  }

  /** A frame implausible after `last`: it confirms the previous implausible frame, or becomes the new one. */
  private fromCandidate(seq: number, rx: number): SeqVerdict {
    const c = this.candidate;
    if (c !== null) {
      const missing = (seq - c.seq - 1 + U32) % U32;
      // The frame before was no accident: this one continues from it. Count from there.
      if (missing < HALF && missing < plausibleAhead(rx - c.rx)) return this.forward(seq, rx, missing);
    }
    this.implausible++;
    this.candidate = { seq, rx };
    this.seen[seq % RING] = seq;
    return 'implausible';
  }

  private forward(seq: number, rx: number, missing: number): SeqVerdict {
    this.rebase(seq, rx);
    if (missing > 0) {
      this.gaps++;
      this.framesLost += missing;
      this.lastGap = missing;
      return 'gap';
    }
    return 'new';
  }

  private rebase(seq: number, rx: number): void {
    this.helloPending = false;
    this.candidate = null;
    this.last = seq;
    this.lastRx = rx;
    this.seen[seq % RING] = seq;
  }
}

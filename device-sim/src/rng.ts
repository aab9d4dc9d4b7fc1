/**
 * Seeded pseudo-random numbers so that `--seed` makes a run reproducible: same seed, same commands,
 * same simulated times → byte-identical frames. mulberry32 is small, fast and good enough for noise.
 */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal (mean 0, sd 1). */
  gaussian(): number;
  /** Integer in [min, max] inclusive. */
  int(min: number, max: number): number;
}

/** Mixes a seed and a stream index (one stream per simulated console) into one 32-bit state. */
export function deriveSeed(seed: number, stream: number): number {
  let h = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (stream + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  // Box–Muller yields two normals per draw; keep the second so the stream stays aligned.
  let spare: number | null = null;

  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  const gaussian = (): number => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = next();
    const v = next();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };

  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));

  return { next, gaussian, int };
}

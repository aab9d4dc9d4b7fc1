/**
 * Doubles as JSON values that read back as the very same double: a finite number is written as it is (JSON.stringify
 * prints the shortest text that parses back to the same double), -0, Infinity, -Infinity and NaN as strings, since
 * JSON has no way to write them. Used by the state a long computation saves to resume later (the perfusion record's
 * telemetry checkpoints), where "resumed" must give the same numbers, bit for bit, as "done at once".
 */
export type ExactNumber = number | '-0' | 'Infinity' | '-Infinity' | 'NaN';

export function enc(x: number): ExactNumber {
  if (Number.isFinite(x)) return Object.is(x, -0) ? '-0' : x;
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
}

export function dec(x: unknown): number {
  if (typeof x === 'number') return x;
  switch (x) {
    case '-0': return -0;
    case 'Infinity': return Infinity;
    case '-Infinity': return -Infinity;
    case 'NaN': return NaN;
    default: throw new TypeError(`not a saved number: ${JSON.stringify(x)}`);
  }
}

export const encAll = (xs: ArrayLike<number>): ExactNumber[] => Array.from(xs, enc);
export const decAll = (xs: unknown): number[] => {
  if (!Array.isArray(xs)) throw new TypeError('not a saved list of numbers');
  return xs.map(dec);
};

/** One measurement of a benchmark (bench/<name>.ts exports `run(): Promise<BenchResult[]>`). */
export interface BenchResult {
  /** `<module>.<what>`, e.g. `codec.decodeLine`. */
  name: string;
  value: number;
  /** e.g. `frames/s`, `ms`, `bytes`. */
  unit: string;
  /** What the value must reach, e.g. `>= 300000`. */
  target?: string;
  /** What to compare it with, e.g. the serial line-rate ceiling. */
  baseline?: string;
  note?: string;
}

/**
 * `/metrics` is one prom-client Registry owned by the gateway. Each part registers its families there with
 * `registerMetrics(registry)`; the values are read from the part's own counters and status at scrape time (a
 * collect callback), so the parts keep counting the way they always did and nothing is counted twice. Label
 * escaping, the exposition format and its Content-Type are prom-client's.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export { Registry };

export type Labels = Record<string, string>;
/** What a family shows at one scrape: a value (a family without labels), or a value per label set. */
export type Samples = number | Iterable<readonly [Labels, number]>;

export interface Family {
  name: string;
  help: string;
  /** Every label key a sample may carry (a sample may leave some out). */
  labelNames?: readonly string[];
  read: () => Samples;
}

/** A gauge whose value(s) are read at scrape time. */
export function gauge(registry: Registry, f: Family): void {
  new Gauge({
    name: f.name, help: f.help, labelNames: f.labelNames ?? [], registers: [registry],
    collect() {
      this.reset();
      const s = f.read();
      if (typeof s === 'number') this.set(s);
      else for (const [labels, v] of s) this.set(labels, v);
    },
  });
}

/**
 * A counter whose totals are read at scrape time from the part that counts (reset, then set to the total).
 * Families with labels show only the label sets the part returns, as before.
 */
export function counter(registry: Registry, f: Family): void {
  new Counter({
    name: f.name, help: f.help, labelNames: f.labelNames ?? [], registers: [registry],
    collect() {
      this.reset();
      const s = f.read();
      if (typeof s === 'number') this.inc(s);
      else for (const [labels, v] of s) this.inc(labels, v);
    },
  });
}

/** The Prometheus text of a registry holding only what `register` adds: for tests of one part's families. */
export async function metricsTextOf(register: (registry: Registry) => void): Promise<string> {
  const registry = new Registry();
  register(registry);
  return registry.metrics();
}

let processRegistry: Registry | null = null;

/**
 * prom-client's default Node.js process metrics under their usual names (`nodejs_eventloop_lag_seconds`,
 * `process_cpu_seconds_total`, `process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`, …), so stock
 * Node.js dashboards and alert rules work as they are. They describe the process, not one gateway: they are
 * made once per process (the event-loop monitor and the GC observer are never stopped) and shared by every
 * gateway's registry, so tests that start many gateways in one process do not pile up monitors.
 */
export function addProcessMetrics(registry: Registry): void {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  for (const { name } of processRegistry.getMetricsAsArray()) registry.registerMetric(processRegistry.getSingleMetric(name)!);
}

/**
 * `read` once per scrape for several families fed by one status object. The registry runs every family's
 * collect callback in one synchronous pass, so a value kept until the next microtask belongs to that scrape.
 */
export function oncePerScrape<T>(read: () => T): () => T {
  let kept: { value: T } | null = null;
  return () => {
    if (!kept) {
      kept = { value: read() };
      queueMicrotask(() => { kept = null; });
    }
    return kept.value;
  };
}

/**
 * Scripted scenarios: a YAML or JSON file of timed events (`at`, `action`, `device?`, `duration?`,
 * `params?`), validated with field paths in the errors, and a runner that applies each event to
 * its consoles at its simulated time. Link-level actions go to the console's link.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LINK_ACTIONS, formatIssues, simActionSchema, toSimAction } from './actions.js';
import type { SimAction } from './actions.js';
import type { SimulatedConsole } from './console.js';
import { applyConsoleAction } from './faults.js';

const eventSchema = simActionSchema.superRefine((e, ctx) => {
  if (e.at === undefined) ctx.addIssue({ code: 'custom', path: ['at'], message: 'required: when the event happens (e.g. 90s)' });
});

export const scenarioSchema = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
  /** How many consoles, or their ids; the caller's devices/deviceIds win. */
  devices: z.union([z.number().int().min(1).max(1000), z.array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/)).min(1)]).optional(),
  /** PRIME and START at power-up so the events meet a RUNNING circuit. */
  autoRun: z.union([z.boolean(), z.object({ sessionId: z.string().optional() }).strict()]).optional(),
  events: z.array(eventSchema),
}).strict();

export type ScenarioEvent = SimAction & { atMs: number };
export interface Scenario {
  name: string;
  description?: string;
  devices?: number | string[];
  autoRun?: boolean | { sessionId?: string };
  events: ScenarioEvent[];
}

/** Validates a parsed scenario document; throws an Error naming every bad field path. */
export function parseScenario(doc: unknown, source = 'scenario'): Scenario {
  const r = scenarioSchema.safeParse(doc);
  if (!r.success) throw new Error(`${source}: ${formatIssues(r.error)}`);
  const { events, ...rest } = r.data;
  const parsed = events.map((e) => toSimAction(e) as ScenarioEvent);
  // Stable sort: events at the same time keep their file order.
  parsed.sort((a, b) => a.atMs - b.atMs);
  return { ...rest, events: parsed };
}

/** Reads a `.yaml`, `.yml` or `.json` scenario file (YAML 1.2 reads JSON too). */
export async function loadScenarioFile(path: string): Promise<Scenario> {
  const text = await readFile(path, 'utf8');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new Error(`${path}: not valid YAML/JSON: ${(err as Error).message}`);
  }
  return parseScenario(doc, path);
}

export interface ScenarioTarget {
  console: SimulatedConsole;
  link: { applyLinkAction(a: SimAction): void };
}

/** The consoles an action addresses: all, one by 0-based index, or one by device id. */
export function selectTargets<T extends ScenarioTarget>(targets: T[], device: string | number | undefined): T[] {
  if (device === undefined) return targets;
  const found = typeof device === 'number' ? targets[device] : targets.find((t) => t.console.deviceId === device);
  if (!found) {
    const ids = targets.map((t) => t.console.deviceId).join(', ');
    throw new Error(`device ${JSON.stringify(device)} is not simulated (have: ${ids})`);
  }
  return [found];
}

/**
 * Applies one action to one console now: link actions to its link, the rest to the console; a
 * power cycle to both (over MQTT the connection dies with the power).
 */
export function applyAction(target: ScenarioTarget, a: SimAction): void {
  if (LINK_ACTIONS.has(a.action)) {
    target.link.applyLinkAction(a);
    return;
  }
  applyConsoleAction(target.console, a);
  if (a.action === 'power_cycle') target.link.applyLinkAction(a);
}

export class ScenarioRunner {
  private cancels: Array<() => void> = [];
  /** Events applied so far, for logs and tests. */
  applied = 0;

  constructor(
    private readonly scenario: Scenario,
    private readonly targets: ScenarioTarget[],
    private readonly onApply: (event: ScenarioEvent, deviceId: string) => void = () => {},
  ) {}

  /** Schedules every event on its consoles' simulated time; throws if one names an unknown device. */
  start(): void {
    const plan = this.scenario.events.map((e) => ({ e, targets: selectTargets(this.targets, e.device) }));
    for (const { e, targets } of plan) {
      for (const t of targets) {
        this.cancels.push(t.console.schedule(e.atMs, () => {
          this.applied++;
          this.onApply(e, t.console.deviceId);
          applyAction(t, e);
        }));
      }
    }
  }

  /** Safe twice. */
  stop(): void {
    for (const cancel of this.cancels) cancel();
    this.cancels = [];
  }
}

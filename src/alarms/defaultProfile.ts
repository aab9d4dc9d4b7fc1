/**
 * The default alarm profile for the MSC circuit: the table of docs/alarms.md ("Default profile"), as data. Everything here can be
 * overridden by a profile file (rules.ts loadProfile), per device model and per device.
 * Re-annunciation and escalation are not in that table: single-priority HIGH process alarms
 * re-annunciate after 5 min if acknowledged but still present; nothing escalates by default (configure `escalateAfterS`).
 */
import { SESSION_STATES } from '../protocol/types.js';
import type { RuleInput } from './ruleSchema.js';

const NOT_IDLE = SESSION_STATES.filter((s) => s !== 'IDLE');
const CELL_STATES = ['RUNNING', 'PAUSED', 'PRIMED'] as const;
const REANNUNCIATE_HIGH_S = 300;

export const DEFAULT_RULES: readonly RuleInput[] = [
  {
    id: 'AIR_IN_LINE', kind: 'detector', channel: 'AIR', priority: 'HIGH', latching: true,
    states: NOT_IDLE, reannunciateS: REANNUNCIATE_HIGH_S, message: 'Air in the return line',
  },
  {
    id: 'BLOOD_LEAK', kind: 'detector', channel: 'BLD', priority: 'HIGH', latching: true,
    states: ['RUNNING', 'PAUSED', 'RINSEBACK'], reannunciateS: REANNUNCIATE_HIGH_S, message: 'Blood leak into the plasma line',
  },
  {
    id: 'PV_HIGH', kind: 'high', channel: 'PV', limit: 250, deadband: 10, onDelayS: 2, priority: 'HIGH', latching: true,
    reannunciateS: REANNUNCIATE_HIGH_S, message: 'Venous pressure high (kink or clot in the return line)',
  },
  {
    id: 'PV_LOW', kind: 'low', channel: 'PV', limit: 20, deadband: 5, onDelayS: 2, priority: 'HIGH', latching: true,
    reannunciateS: REANNUNCIATE_HIGH_S, message: 'Venous pressure low: possible return-line disconnection',
  },
  {
    id: 'PA_LOW', kind: 'low', channel: 'PA', limit: -250, deadband: 10, onDelayS: 3, priority: 'HIGH',
    reannunciateS: REANNUNCIATE_HIGH_S, message: 'Arterial pressure low: access collapse',
  },
  {
    id: 'TMP_HIGH', kind: 'high', channel: 'TMP', deadband: 5, onDelayS: 5, priority: 'MEDIUM',
    levels: [{ threshold: 100, priority: 'MEDIUM' }, { threshold: 150, priority: 'HIGH' }],
    message: 'Transmembrane pressure high',
  },
  {
    id: 'DPR_HIGH', kind: 'high', channel: 'DPR', limit: 80, deadband: 5, onDelayS: 10, priority: 'MEDIUM',
    or: [{ kind: 'rise', channel: 'DPR', limit: 30, deadband: 5, windowS: 30 * 60 }],
    message: 'Reactor pressure drop high or rising: cartridge clotting',
  },
  {
    id: 'TR_DEVIATION', kind: 'deviation', channel: 'TR', setpoint: 'STR', mode: 'absolute', limit: 1.0, deadband: 0.2,
    onDelayS: 60, priority: 'MEDIUM', states: [...CELL_STATES], message: 'Reactor temperature off its setpoint',
  },
  {
    id: 'TR_CRITICAL', kind: 'low', channel: 'TR', limit: 35.0, deadband: 0.2, onDelayS: 10, priority: 'HIGH', latching: true,
    or: [{ kind: 'high', channel: 'TR', limit: 39.0, deadband: 0.2 }], states: [...CELL_STATES],
    reannunciateS: REANNUNCIATE_HIGH_S, message: 'Reactor temperature outside 35–39 °C: cells at risk',
  },
  {
    id: 'QB_DEVIATION', kind: 'deviation', channel: 'QB', setpoint: 'SQB', mode: 'percent', limit: 10, deadband: 2,
    onDelayS: 10, priority: 'MEDIUM', message: 'Blood flow off its setpoint',
  },
  {
    id: 'PLASMA_FRACTION', kind: 'high', channel: 'QP', percentOf: 'QB', limit: 30, deadband: 1, onDelayS: 10,
    priority: 'MEDIUM', message: 'Plasma flow above 30 % of blood flow',
  },
  {
    // ICD §1: the device pauses by itself on AIR or BLD, so a long pause may mean an unattended stop.
    id: 'PUMP_STOPPED', kind: 'stateDuration', inState: ['PAUSED'], states: 'any', priority: 'MEDIUM',
    levels: [{ after: 60, priority: 'MEDIUM' }, { after: 300, priority: 'HIGH' }],
    message: 'Blood pump stopped (PAUSED)',
  },
  {
    id: 'PH_LOW', kind: 'low', channel: 'PH', limit: 7.20, deadband: 0.02, onDelayS: 30, priority: 'MEDIUM',
    message: 'Reactor medium pH low',
  },
  {
    id: 'DO_LOW', kind: 'low', channel: 'DO', limit: 40, deadband: 2, onDelayS: 60, priority: 'LOW',
    message: 'Reactor dissolved oxygen low',
  },
  {
    // Circuit age counts from the session's first RUNNING, pauses included: it never alarms later than
    // cumulative RUNNING time would.
    id: 'CIRCUIT_AGE', kind: 'stateDuration', inState: ['RUNNING'], scope: 'session', after: 72 * 3600,
    states: ['RUNNING', 'PAUSED'], priority: 'LOW', message: 'Circuit in use for more than 72 h',
  },
];

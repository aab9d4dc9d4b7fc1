import { describe, expect, it } from 'vitest';
import { acceptedStates, checkCommand, CMD_ID_RE, SETPOINT_LIMITS } from '../../../src/protocol/commands.js';
import type { CommandContext } from '../../../src/protocol/commands.js';
import { COMMAND_VERBS, SESSION_STATES } from '../../../src/protocol/types.js';
import type { CommandVerb, SessionState } from '../../../src/protocol/types.js';

/**
 * ICD §1 "accepted in", transcribed as a matrix (1 = accepted) so it reads against the ICD table.
 * Columns follow SESSION_STATES.
 */
const STATE_COLUMNS = ['IDLE', 'SELFTEST', 'PRIMING', 'PRIMED', 'RUNNING', 'PAUSED', 'RINSEBACK', 'ENDED', 'FAULT'];
const ICD_MATRIX: Record<CommandVerb, number[]> = {
  //         IDLE SELF PRIMING PRIMED RUNNING PAUSED RINSEBACK ENDED FAULT
  ID:        [1, 1, 1, 1, 1, 1, 1, 1, 1],
  SYNC:      [1, 1, 1, 1, 1, 1, 1, 1, 1],
  RATE:      [1, 1, 1, 1, 1, 1, 1, 1, 1],
  SET:       [1, 1, 1, 1, 1, 1, 1, 1, 0],
  PRIME:     [1, 0, 0, 0, 0, 0, 0, 0, 0],
  START:     [0, 0, 0, 1, 0, 0, 0, 0, 0],
  PAUSE:     [0, 0, 0, 0, 1, 0, 0, 0, 0],
  RESUME:    [0, 0, 0, 0, 0, 1, 0, 0, 0],
  RINSEBACK: [0, 0, 0, 0, 1, 1, 0, 0, 0],
  END:       [0, 1, 1, 1, 1, 1, 1, 1, 1],
  RESET:     [0, 0, 0, 0, 0, 0, 0, 1, 1],
  SILENCE:   [1, 1, 1, 1, 1, 1, 1, 1, 1],
};
const ANY_STATE: ReadonlySet<CommandVerb> = new Set(['ID', 'SYNC', 'RATE', 'SILENCE']);

/** Valid serial-style (text) args per verb. */
const VALID_ARGS: Record<CommandVerb, string[]> = {
  ID: [], SYNC: ['1764061200000'], RATE: ['10'], SET: ['QB', '150'], PRIME: [], START: ['S-20261125-01'],
  PAUSE: [], RESUME: [], RINSEBACK: [], END: [], RESET: [], SILENCE: [],
};

const ctx = (state: SessionState | null, setpoints: CommandContext['setpoints'] = {}): CommandContext => ({ state, setpoints });

describe('checkCommand: verbs x states (ICD §1 "accepted in")', () => {
  expect(STATE_COLUMNS).toEqual([...SESSION_STATES]);
  const cases = COMMAND_VERBS.flatMap((verb) => SESSION_STATES.map((state, i) => ({ verb, state, accepted: ICD_MATRIX[verb][i] === 1 })));

  it.each(cases)('$verb in $state -> accepted=$accepted', ({ verb, state, accepted }) => {
    const r = checkCommand({ cmdId: 'c1', verb, args: VALID_ARGS[verb] }, ctx(state));
    if (accepted) expect(r.ok).toBe(true);
    else expect(r).toMatchObject({ ok: false, code: 'wrong_state', detail: `state ${state} does not accept ${verb}` });
  });

  it.each([...COMMAND_VERBS])('%s is let through when the state is unknown (the device decides)', (verb) => {
    expect(checkCommand({ cmdId: 'c1', verb, args: VALID_ARGS[verb] }, ctx(null)).ok).toBe(true);
  });

  it.each([...COMMAND_VERBS])('acceptedStates(%s) matches the ICD table', (verb) => {
    const expected = ANY_STATE.has(verb) ? 'any' : SESSION_STATES.filter((_, i) => ICD_MATRIX[verb][i] === 1);
    expect(acceptedStates(verb)).toEqual(expected);
  });
});

describe('checkCommand: limits (ICD §1 SET and RATE)', () => {
  const LIMITS: Array<[string, unknown[], CommandContext['setpoints'], boolean]> = [
    ['QB min', ['QB', '0'], {}, true],
    ['QB max', ['QB', '300'], {}, true],
    ['QB over max', ['QB', '300.1'], {}, false],
    ['QB negative', ['QB', '-1'], {}, false],
    ['QP max without known QB', ['QP', '60'], {}, true],
    ['QP max with QB null', ['QP', '60'], { QB: null }, true],
    ['QP over max', ['QP', '60.5'], {}, false],
    ['QP at 30 % of QB 100', ['QP', '30'], { QB: 100 }, true],
    ['QP above 30 % of QB 100', ['QP', '30.1'], { QB: 100 }, false],
    ['QP at 30 % of QB 110 (binary rounding)', ['QP', 33], { QB: 110 }, true],
    ['QP within 0-60 but above 30 % of QB 150', ['QP', 46], { QB: 150 }, false],
    ['QP at 30 % of QB 0', ['QP', 0], { QB: 0 }, true],
    ['QB keeps QP 30 at 30 %', ['QB', '100'], { QP: 30 }, true],
    ['QB lowered under QP / 0.3', ['QB', '99'], { QP: 30 }, false],
    ['TR under min', ['TR', '34.9'], {}, false],
    ['TR min written 35.0', ['TR', '35.0'], {}, true],
    ['TR max', ['TR', '39'], {}, true],
    ['TR over max', ['TR', '39.01'], {}, false],
    ['HEP min', ['HEP', '0'], {}, true],
    ['HEP max', ['HEP', 20], {}, true],
    ['HEP over max', ['HEP', '20.5'], {}, false],
    ['HEP negative', ['HEP', '-0.1'], {}, false],
  ];
  it.each(LIMITS)('SET %s', (_why, args, setpoints, ok) => {
    const r = checkCommand({ cmdId: 'c1', verb: 'SET', args }, ctx('RUNNING', setpoints));
    if (ok) expect(r).toMatchObject({ ok: true, cmd: { args: [args[0], Number(args[1])] } });
    else expect(r).toMatchObject({ ok: false, code: 'out_of_limits' });
  });

  it.each([['0', false], ['1', true], ['100', true], ['101', false]] as const)('RATE %s -> ok=%s', (hz, ok) => {
    const r = checkCommand({ cmdId: 'c1', verb: 'RATE', args: [hz] }, ctx('IDLE'));
    expect(r.ok ? 'ok' : (r as { code: string }).code).toBe(ok ? 'ok' : 'out_of_limits');
  });

  it('exposes the ICD setpoint limits', () => {
    expect(SETPOINT_LIMITS).toEqual({
      QB: { min: 0, max: 300, unit: 'mL/min' }, QP: { min: 0, max: 60, unit: 'mL/min' },
      TR: { min: 35, max: 39, unit: '°C' }, HEP: { min: 0, max: 20, unit: 'mL/h' },
    });
  });
});

describe('checkCommand: malformed (device answers ERR)', () => {
  const MALFORMED: Array<[string, { cmdId: string; verb: string; args: unknown[] }]> = [
    ['empty cmd_id', { cmdId: '', verb: 'ID', args: [] }],
    ['cmd_id of 9', { cmdId: 'c12345678', verb: 'ID', args: [] }],
    ['cmd_id with _', { cmdId: 'c_1', verb: 'ID', args: [] }],
    ['unknown verb', { cmdId: 'c1', verb: 'FLY', args: [] }],
    ['lower-case verb', { cmdId: 'c1', verb: 'set', args: ['QB', 1] }],
    ['ID with an arg', { cmdId: 'c1', verb: 'ID', args: ['x'] }],
    ['args not a list', { cmdId: 'c1', verb: 'ID', args: 'x' as unknown as unknown[] }],
    ['SET with one arg', { cmdId: 'c1', verb: 'SET', args: ['QB'] }],
    ['SET with three args', { cmdId: 'c1', verb: 'SET', args: ['QB', 1, 2] }],
    ['SET unknown channel', { cmdId: 'c1', verb: 'SET', args: ['QR', 1] }],
    ['SET channel as number', { cmdId: 'c1', verb: 'SET', args: [1, 2] }],
    ['SET value text', { cmdId: 'c1', verb: 'SET', args: ['QB', 'abc'] }],
    ['SET value exponent', { cmdId: 'c1', verb: 'SET', args: ['QB', '1e2'] }],
    ['SET value NaN', { cmdId: 'c1', verb: 'SET', args: ['QB', Number.NaN] }],
    ['SET value boolean', { cmdId: 'c1', verb: 'SET', args: ['QB', true] }],
    ['START without id', { cmdId: 'c1', verb: 'START', args: [] }],
    ['START id with space', { cmdId: 'c1', verb: 'START', args: ['S 1'] }],
    ['START id of 33', { cmdId: 'c1', verb: 'START', args: ['x'.repeat(33)] }],
    ['START id empty', { cmdId: 'c1', verb: 'START', args: [''] }],
    ['START id as number', { cmdId: 'c1', verb: 'START', args: [123] }],
    ["START id '-' (an S frame's 'no session')", { cmdId: 'c1', verb: 'START', args: ['-'] }],
    ['SYNC negative', { cmdId: 'c1', verb: 'SYNC', args: ['-5'] }],
    ['SYNC fractional', { cmdId: 'c1', verb: 'SYNC', args: [1.5] }],
    ['SYNC missing', { cmdId: 'c1', verb: 'SYNC', args: [] }],
    ['RATE fractional', { cmdId: 'c1', verb: 'RATE', args: ['2.5'] }],
  ];
  it.each(MALFORMED)('%s', (_why, cmd) => {
    expect(checkCommand(cmd, ctx('RUNNING'))).toMatchObject({ ok: false, code: 'malformed' });
  });

  it('reports malformed before wrong_state, and wrong_state before out_of_limits', () => {
    expect(checkCommand({ cmdId: 'c1', verb: 'SET', args: ['XX', 1] }, ctx('FAULT'))).toMatchObject({ code: 'malformed' });
    expect(checkCommand({ cmdId: 'c1', verb: 'SET', args: ['QB', 999] }, ctx('FAULT'))).toMatchObject({ code: 'wrong_state' });
  });
});

describe('checkCommand: normalised args', () => {
  it('parses numbers from serial text and keeps strings where the ICD wants text', () => {
    expect(checkCommand({ cmdId: 'c17', verb: 'SET', args: ['QB', '160'] }, ctx('RUNNING')))
      .toStrictEqual({ ok: true, cmd: { cmdId: 'c17', verb: 'SET', args: ['QB', 160] } });
    expect(checkCommand({ cmdId: 'A1', verb: 'SYNC', args: ['1764061200000'] }, ctx(null)))
      .toStrictEqual({ ok: true, cmd: { cmdId: 'A1', verb: 'SYNC', args: [1764061200000] } });
    expect(checkCommand({ cmdId: 'c18', verb: 'START', args: ['007'] }, ctx('PRIMED')))
      .toStrictEqual({ ok: true, cmd: { cmdId: 'c18', verb: 'START', args: ['007'] } });
    const zero = checkCommand({ cmdId: 'c1', verb: 'SET', args: ['HEP', '-0'] }, ctx('IDLE'));
    expect(zero.ok && Object.is(zero.cmd.args[1], 0)).toBe(true);
  });

  it('CMD_ID_RE is 1-8 of [A-Za-z0-9]', () => {
    for (const ok of ['a', 'c17', 'ABCDEFGH', '12345678']) expect(CMD_ID_RE.test(ok)).toBe(true);
    for (const bad of ['', 'ABCDEFGHI', 'c-1', 'c 1', 'c1\n']) expect(CMD_ID_RE.test(bad)).toBe(false);
  });
});

/**
 * The operator's control panel: setpoint changes and session commands, each confirmed in a dialog
 * that shows the old and the new value, then the device's answer (OK, REJ with the reason, TIMEOUT, conflicting
 * answers, or the gateway's refusal). Commands go through `POST /api/devices/:id/commands` (docs/security.md).
 */
import { ApiError, api } from './api.js';
import { format, info, SETPOINTS } from './channels.js';
import { modal, outcome, select, textInput } from './dialogs.js';
import { h } from './dom.js';
import type { Console } from './model.js';

const SESSION_COMMANDS: Array<{ verb: string; label: string; danger?: boolean }> = [
  { verb: 'PRIME', label: 'Prime' }, { verb: 'START', label: 'Start' }, { verb: 'PAUSE', label: 'Pause' },
  { verb: 'RESUME', label: 'Resume' }, { verb: 'RINSEBACK', label: 'Rinseback', danger: true },
  { verb: 'END', label: 'End', danger: true }, { verb: 'RESET', label: 'Reset' }, { verb: 'SILENCE', label: 'Silence device' },
];
/** ICD §1 "Commands to the device": the state each verb moves the console to. */
const NEXT_STATE: Record<string, string> = {
  PRIME: 'SELFTEST → PRIMING → PRIMED', START: 'RUNNING', PAUSE: 'PAUSED', RESUME: 'RUNNING', RINSEBACK: 'RINSEBACK → ENDED',
  END: 'ENDED', RESET: 'IDLE', SILENCE: 'device alarm sound paused 120 s',
};

export class ControlPanel {
  readonly el: HTMLElement;
  private readonly result: HTMLElement;

  constructor(private readonly console: () => Console) {
    this.result = h('p', { class: 'cmd-result', role: 'status', 'aria-live': 'polite' });
    const sp = SETPOINTS.map((s) => {
      const input = h('input', { type: 'number', min: s.min, max: s.max, step: s.step, name: s.key, 'aria-label': `New ${s.key} setpoint`, class: 'sp-input' });
      return h('form', { class: 'sp-row', 'data-setpoint': s.key, onsubmit: (ev: Event) => { ev.preventDefault(); void this.setpoint(s.key, s.sp, input); } },
        h('label', {}, h('span', { class: 'sp-key' }, `${s.key}`), h('span', { class: 'muted' }, ` ${info(s.key).unit} (${s.min}–${s.max})`)),
        input, h('button', { type: 'submit', class: 'btn', 'data-action': `set-${s.key}` }, 'Set…'));
    });
    const cmds = SESSION_COMMANDS.map((c) => h('button', {
      type: 'button', class: c.danger ? 'btn btn-danger' : 'btn', 'data-verb': c.verb, onclick: () => void this.session(c.verb),
    }, c.label));
    this.el = h('section', { class: 'controls', 'aria-label': 'Control panel' },
      h('h2', {}, 'Control'), h('div', { class: 'sp-grid' }, ...sp), h('div', { class: 'cmd-row' }, ...cmds), this.result);
  }

  private async setpoint(key: string, spKey: string, input: HTMLInputElement): Promise<void> {
    const next = Number(input.value);
    if (input.value === '' || !Number.isFinite(next)) return outcome(this.result, 'err', `Enter a new ${key} setpoint.`);
    const c = this.console();
    const old = c.values[spKey];
    const reason = textInput('reason', { maxlength: 500, placeholder: 'optional' });
    const ok = await modal(`Change ${key} setpoint on ${c.id}?`, [
      h('p', { class: 'confirm-change', 'data-old': String(old ?? ''), 'data-new': String(next) },
        h('span', { class: 'old' }, `${key} ${format(key, old)}`), ' → ', h('strong', { class: 'new' }, `${format(key, next)} ${info(key).unit}`)),
    ], [{ name: 'reason', label: 'Reason', input: reason }], `Set ${key} to ${format(key, next)}`);
    if (!ok) return outcome(this.result, 'pending', 'Cancelled: nothing sent.');
    await this.send(c.id, 'SET', [key, next], ok.reason, `SET ${key} ${format(key, old)} → ${format(key, next)}`);
  }

  private async session(verb: string): Promise<void> {
    const c = this.console();
    const fields = [];
    const sid = textInput('sessionId', { required: true, pattern: '[A-Za-z0-9-]{1,32}', maxlength: 32, value: `S-${new Date().toISOString().slice(0, 10).replace(/-/g, '')}-${c.id}`.slice(0, 32) });
    if (verb === 'START') fields.push({ name: 'sessionId', label: 'Session id', input: sid });
    fields.push({ name: 'reason', label: 'Reason', input: textInput('reason', { maxlength: 500, placeholder: 'optional' }) });
    const ok = await modal(`${verb} on ${c.id}?`, [
      h('p', { class: 'confirm-change' }, h('span', { class: 'old' }, `State ${c.state ?? 'unknown'}`), ' → ', h('strong', { class: 'new' }, NEXT_STATE[verb] ?? verb)),
    ], fields, verb, ['END', 'RINSEBACK'].includes(verb));
    if (!ok) return outcome(this.result, 'pending', 'Cancelled: nothing sent.');
    await this.send(c.id, verb, verb === 'START' ? [ok.sessionId] : [], ok.reason, verb);
  }

  private async send(device: string, verb: string, args: Array<string | number>, reason: string | undefined, what: string): Promise<void> {
    outcome(this.result, 'pending', `${what}: sent, waiting for the device…`);
    try {
      const r = await api<{ result: string; detail: string; cmdId: string }>(`/api/devices/${encodeURIComponent(device)}/commands`, {
        method: 'POST', body: { verb, args, reason: reason || undefined },
      });
      if (r.result === 'OK') outcome(this.result, 'ok', `${what}: OK`);
      else if (r.result === 'REJ') outcome(this.result, 'rej', `${what}: REJECTED by the device — ${r.detail || 'no reason given'}`);
      else if (r.result === 'TIMEOUT') outcome(this.result, 'err', `${what}: TIMED OUT — the device did not answer`);
      // Two different answers to the same command: someone else may be answering as the console.
      // The detail reads "conflicting answers from the console: OK, then REJ (...); verify its state".
      else if (r.result === 'conflict') outcome(this.result, 'err', `${what}: CONFLICT — ${r.detail || 'conflicting answers from the console; verify its state'}`);
      else outcome(this.result, 'err', `${what}: ${r.result} ${r.detail}`);
    } catch (err) {
      const msg = err instanceof ApiError ? `${err.status}: ${err.message}` : String(err);
      outcome(this.result, 'err', `${what}: NOT SENT — ${msg}`);
    }
  }
}

/** "Mark event": a clinical annotation at the moment the button is pressed. */
export async function annotate(device: string, resultEl: HTMLElement): Promise<void> {
  const t = Date.now();
  const kind = select('kind', [['note', 'Note'], ['intervention', 'Intervention'], ['adverse_event', 'Suspected adverse event']]);
  const subtype = select('subtype', [['', '—'], ['hypotension', 'Hypotension'], ['fever', 'Fever'], ['chills', 'Chills'], ['bleeding', 'Bleeding'], ['circuit_clotting', 'Circuit clotting'], ['other', 'Other']]);
  const text = h('textarea', { name: 'text', required: true, maxlength: 2000, rows: 3 });
  const ok = await modal(`Mark an event on ${device} at ${new Date(t).toLocaleTimeString()}`, [], [
    { name: 'kind', label: 'Kind', input: kind }, { name: 'subtype', label: 'Adverse event type', input: subtype },
    { name: 'text', label: 'What happened', input: text },
  ], 'Save');
  if (!ok) return;
  try {
    await api(`/api/devices/${encodeURIComponent(device)}/annotations`, {
      method: 'POST', body: { t, kind: ok.kind, subtype: ok.kind === 'adverse_event' ? ok.subtype || 'other' : undefined, text: ok.text },
    });
    outcome(resultEl, 'ok', `Event marked at ${new Date(t).toLocaleTimeString()}.`);
  } catch (err) {
    outcome(resultEl, 'err', `Not saved: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * The perfusion record of one session, `#/sessions/<id>?device=<device>`: the signed electronic record
 * (21 CFR Part 11) as `GET /api/sessions/:id/record` returns it (RecordView, src/record/types.ts). Header,
 * trend charts, alarms, events, commands, annotations (adverse events marked), completeness and channel
 * statistics, the record's SHA-256, the signature manifest with a "changed since signed" mark, and the
 * amendments made after the first signature. Operators and above sign it here (ended sessions only), anyone
 * downloads the PDF. Nothing on this page is live: it shows the record as loaded, with the time it was made.
 */
import { SIGNATURE_MEANINGS, TREND_CHARTS, type PerfusionRecord, type RecordSignature, type RecordView, type SignatureMeaning } from '../../src/record/types.js';
import { api, ApiError, download } from './api.js';
import type { AppContext, View } from './app.js';
import { format, info } from './channels.js';
import { outcome } from './dialogs.js';
import { duration, h, type Child } from './dom.js';
import { recordChart } from './recordChart.js';
import { utc, zoned } from './recordTime.js';

const MEANING_TEXT: Record<SignatureMeaning, string> = {
  reviewed: 'Reviewed', approved: 'Approved', authored: 'Authored',
};
/** Dialog order: review is the usual signature, authorship the rarest. */
const DIALOG_MEANINGS: SignatureMeaning[] = ['reviewed', 'approved', 'authored'];
const MEANING_VERB: Record<SignatureMeaning, string> = {
  reviewed: 'reviewed', approved: 'approved', authored: 'am the author of',
};

/** `#/sessions/<id>?device=<device>` for a session (the device tells apart a session id used on two consoles). */
export function recordHref(sessionId: string, device: string | null): string {
  return `#/sessions/${encodeURIComponent(sessionId)}${device ? `?device=${encodeURIComponent(device)}` : ''}`;
}

function table(cls: string, head: string[], rows: HTMLTableRowElement[], empty: string): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'muted rec-empty' }, empty);
  return h('div', { class: 'rec-table-wrap' }, h('table', { class: `history rec-table ${cls}` },
    h('thead', {}, h('tr', {}, ...head.map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, ...rows)));
}

function row(attrs: Record<string, string | null>, ...cells: Child[]): HTMLTableRowElement {
  return h('tr', attrs, ...cells.map((c) => h('td', {}, c)));
}

function section(id: string, title: string, ...body: Child[]): HTMLElement {
  return h('section', { class: 'panel rec-section', 'data-section': id, 'aria-labelledby': `rec-h-${id}` }, h('h2', { id: `rec-h-${id}` }, title), ...body);
}

function dl(items: Array<[string, Child]>): HTMLElement {
  return h('dl', { class: 'rec-dl' }, ...items.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

const text = (v: unknown): string => (v === null || v === undefined || v === '' ? '—' : String(v));
const bucket = (ms: number) => (ms < 60_000 ? `${+(ms / 1000).toFixed(1)} s` : ms < 3_600_000 ? `${+(ms / 60_000).toFixed(1)} min` : `${+(ms / 3_600_000).toFixed(1)} h`);
const short = (hash: string) => `${hash.slice(0, 12)}…${hash.slice(-6)}`;

export class RecordPage implements View {
  readonly el: HTMLElement;
  private readonly body = h('div', { class: 'rec-body' });
  private readonly note = h('p', { class: 'cmd-result', role: 'status', 'aria-live': 'polite' });
  private view: RecordView | null = null;
  private gone = false;

  constructor(private readonly app: AppContext, private readonly sessionId: string, private readonly device: string | null) {
    this.el = h('main', { class: 'record-view', 'data-session': sessionId, 'data-device': device ?? '' },
      h('header', { class: 'cv-head' },
        device ? h('a', { href: `#/console/${encodeURIComponent(device)}`, class: 'btn back' }, `← ${device}`) : h('a', { href: '#/', class: 'btn back' }, '← Overview'),
        h('h1', { class: 'cv-id' }, `Perfusion record · session ${sessionId}`),
        h('span', { class: 'grow' }),
        h('button', { type: 'button', class: 'btn', 'data-action': 'reload', onclick: () => void this.load() }, 'Reload'),
        h('button', { type: 'button', class: 'btn', 'data-action': 'pdf', onclick: () => void this.pdf() }, 'Download PDF')),
      this.note, this.body);
    this.body.append(h('p', { class: 'muted' }, 'Loading the record…'));
    void this.load();
  }

  private get query(): string {
    return this.device ? `?device=${encodeURIComponent(this.device)}` : '';
  }

  private get base(): string {
    return `/api/sessions/${encodeURIComponent(this.sessionId)}`;
  }

  async load(): Promise<void> {
    try {
      const v = await api<RecordView>(`${this.base}/record${this.query}`);
      if (this.gone) return;
      this.show(v);
    } catch (err) {
      if (this.gone) return;
      const e = err as ApiError;
      const why = e instanceof ApiError
        ? e.status === 404 ? `No such session: ${e.message}`
          : e.status === 409 ? `${e.message} (open the record from the console's session list)`
            : `${e.status}: ${e.message}`
        : String(err);
      this.view = null;
      this.body.replaceChildren(h('p', { class: 'rec-error', role: 'alert' }, `The record cannot be shown. ${why}`));
    }
  }

  private show(v: RecordView): void {
    this.view = v;
    const r = v.record;
    const tz = r.site.timeZone;
    const aes = r.annotations.filter((a) => a.kind === 'adverse_event').length;
    this.el.dataset.sha256 = v.sha256;
    const parts: Child[] = [
      this.banner(v),
      this.headerSection(r, v),
      this.signBar(v),
      section('trends', 'Trends',
        h('p', { class: 'muted rec-note' }, `Device time, ${tz}; one point per ${bucket(r.trends.bucketMs)} (min–max shaded, mean line). State bands behind; ▲ alarm raises (gateway time).`),
        ...(TREND_CHARTS.map((c) => recordChart(r, c)).filter((x) => x !== null) as HTMLElement[]),
        r.trends.t.length === 0 ? h('p', { class: 'muted rec-empty' }, 'No telemetry was recorded in this session.') : null),
      section('alarms', `Alarms (${r.alarms.length})`, this.alarms(r)),
      section('events', `Device events (${r.events.length})`, table('rec-events', ['Time (device)', 'Code', 'Priority', 'Active', 'Text'],
        r.events.map((e) => row({ 'data-code': e.code }, zoned(e.t, tz), e.code, e.prio, e.active ? 'raised' : 'cleared', e.text)), 'No device events.')),
      section('commands', `Commands (${r.commands.length})`, table('rec-commands', ['Requested (gateway)', 'Command', 'By', 'Reason', 'Outcome'],
        r.commands.map((c) => row({ 'data-outcome': c.outcome },
          zoned(c.at, tz), [c.verb ?? '?', ...c.args.map(String)].join(' '), `${c.user} (${c.role})`, text(c.reason), h('strong', {}, c.outcome))), 'No commands were sent.')),
      section('annotations', `Annotations (${r.annotations.length}${aes ? `, ${aes} adverse event${aes === 1 ? '' : 's'}` : ''})`, this.annotations(r)),
      section('completeness', 'Data completeness and channels', this.completeness(r)),
      this.signatures(v),
      this.amendments(v),
    ];
    this.body.replaceChildren(...parts.filter((p): p is Node | string => Boolean(p)));
  }

  private banner(v: RecordView): HTMLElement | null {
    if (v.changedSinceSigned) {
      const n = v.signatures.filter((s) => s.changedSince).length;
      return h('div', { class: 'rec-banner rec-changed', role: 'alert', 'data-kind': 'changed' },
        `CHANGED SINCE SIGNED: the record no longer matches ${n} of its ${v.signatures.length} signature${v.signatures.length === 1 ? '' : 's'}. `,
        'Those signatures apply to an earlier version (their hash differs from the current one); see the amendments below.');
    }
    if (v.record.session.running) {
      return h('div', { class: 'rec-banner rec-running', role: 'status', 'data-kind': 'running' },
        'SESSION RUNNING: this record is still growing and cannot be signed until the session ends.');
    }
    return null;
  }

  private headerSection(r: PerfusionRecord, v: RecordView): HTMLElement {
    const tz = r.site.timeZone;
    const s = r.session;
    const start = Date.parse(s.startedAt);
    const end = s.endedAt ? Date.parse(s.endedAt) : null;
    const states = Object.entries(s.stateMs).filter(([, ms]) => (ms ?? 0) > 0).map(([st, ms]) => `${st} ${duration(ms ?? 0)}`).join(' · ');
    return section('header', 'Session',
      dl([
        ['Site', `${text(r.site.name)}${r.site.gateway ? ` · gateway ${r.site.gateway}` : ''}`],
        ['Console', `${r.console.device} · model ${text(r.console.model)} · serial ${text(r.console.serialNo)} · firmware ${text(r.console.fw)}`],
        ['Session', h('span', { class: 'rec-session-id' }, s.sessionId)],
        ['Participant', h('span', { class: 'rec-participant' }, text(s.participant))],
        ['Started', `${zoned(start, tz)} (${utc(start)})`],
        ['Ended', end === null ? h('strong', {}, 'still running') : `${zoned(end, tz)} (${utc(end)})${s.endReason ? ` · ${s.endReason}` : ''}`],
        ['Duration', duration(s.durationMs)],
        ['Time in states', states || '—'],
        ['Temperature', r.temperature.trInBandPct === null ? 'TR within STR ± 0.5 °C: not measured'
          : `TR within STR ± 0.5 °C for ${r.temperature.trInBandPct.toFixed(1)} % of ${duration(r.temperature.coveredMs)}`],
        ['Time zone', `${tz} (times below are in this zone unless marked UTC)`],
        ['Record', `${r.format} v${r.version} · shown ${utc(Date.parse(v.generatedAt))}`],
      ]));
  }

  private signBar(v: RecordView): HTMLElement {
    const s = v.record.session;
    const canSign = this.app.can('operator');
    const summary = v.signatures.length === 0 ? 'Not signed.'
      : `Signed ${v.signatures.length}×: ${v.signatures.map((x) => `${MEANING_TEXT[x.meaning]} by ${x.printedName}${x.changedSince ? ' (CHANGED SINCE)' : ''}`).join('; ')}.`;
    return h('section', { class: 'panel rec-signbar', 'data-section': 'sign' },
      h('div', { class: 'rec-hash-row' }, h('span', { class: 'muted' }, 'Record SHA-256 '), h('code', { class: 'rec-hash', 'data-hash': v.sha256 }, v.sha256)),
      h('p', { class: 'rec-sign-summary' }, summary),
      !canSign ? h('p', { class: 'muted', 'data-why': 'role' }, 'Signing needs an operator, engineer or admin token.')
        : s.running ? h('p', { class: 'rec-cannot-sign', 'data-why': 'running' }, 'No signing yet: the session is still running and its record keeps changing. Sign it once the session has ended.')
          : h('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'sign', onclick: () => this.openSign() }, 'Sign…'));
  }

  private alarms(r: PerfusionRecord): HTMLElement {
    const tz = r.site.timeZone;
    return table('rec-alarms', ['Raised (gateway)', 'Priority', 'Alarm', 'Value / limit', 'Acknowledged', 'Time to ack', 'Cleared', 'Shelving and other'],
      r.alarms.map((a) => row({ 'data-priority': a.priority, 'data-rule': a.rule },
        zoned(a.raisedAt, tz), h('strong', {}, a.priority), `${a.message} (${a.rule})`,
        a.value === null && a.limit === null ? '—' : `${text(a.value)} / ${text(a.limit)}`,
        a.ackedAt === null ? h('strong', { class: 'rec-unacked' }, 'not acknowledged') : `${zoned(a.ackedAt, tz).slice(11, 19)} by ${text(a.ackedBy)}`,
        a.timeToAckMs === null ? '—' : a.timeToAckMs < 60_000 ? `${(a.timeToAckMs / 1000).toFixed(1)} s` : duration(a.timeToAckMs),
        a.clearedAt === null ? 'not cleared' : zoned(a.clearedAt, tz).slice(11, 19),
        [...a.shelves.map((x) => `shelved ${zoned(x.at, tz).slice(11, 19)} by ${text(x.by)}${x.until ? ` until ${zoned(x.until, tz).slice(11, 19)}` : ''}${x.reason ? `: ${x.reason}` : ''}`),
          ...a.other.map((x) => `${x.kind} ${zoned(x.at, tz).slice(11, 19)}${x.by ? ` by ${x.by}` : ''}${x.reason ? `: ${x.reason}` : ''}`)].join('; ') || '—')),
      'No alarms were raised in this session.');
  }

  private annotations(r: PerfusionRecord): HTMLElement {
    const tz = r.site.timeZone;
    return table('rec-annotations', ['Time', 'Kind', 'Text', 'By', 'Entered'],
      r.annotations.map((a) => row({ 'data-kind': a.kind, class: a.kind === 'adverse_event' ? 'rec-ae' : null },
        zoned(a.t, tz),
        a.kind === 'adverse_event' ? h('strong', { class: 'rec-ae-tag' }, `⚠ ADVERSE EVENT${a.subtype ? `: ${a.subtype.replace(/_/g, ' ')}` : ''}`) : a.kind,
        a.text, `${a.user} (${a.role})`, zoned(a.createdAt, tz))),
      'No annotations.');
  }

  private completeness(r: PerfusionRecord): HTMLElement {
    const c = r.completeness;
    const ratio = c.ratio === null ? '—' : `${(c.ratio * 100).toFixed(2)} %`;
    const keys = Object.keys(r.channels).sort();
    return h('div', {},
      dl([
        ['Frames', `${c.received} received of ${c.expected} expected (${ratio}); ${c.lost} lost; ${c.stored} stored; ${c.keepAlivesAssumed} keep-alives assumed; ${c.restarts} console restart(s)`],
      ]),
      table('rec-channels', ['Channel', 'Unit', 'Min', 'Mean', 'Max', 'Samples', 'Sensor faults'],
        keys.map((k) => {
          const st = r.channels[k];
          return row({ 'data-channel': k }, k, info(k).unit, format(k, st.min ?? undefined), format(k, st.mean ?? undefined), format(k, st.max ?? undefined), String(st.samples),
            st.faults ? h('strong', {}, String(st.faults)) : '0');
        }), 'No channel statistics.'));
  }

  private signatures(v: RecordView): HTMLElement {
    return section('signatures', `Signatures (${v.signatures.length})`,
      h('p', { class: 'muted rec-note' }, 'Each signature binds the SHA-256 of the record as it was signed; it is kept in the gateway\'s hash-chained audit trail.'),
      table('rec-manifest', ['Printed name', 'User', 'Role', 'Meaning', 'Signed (UTC)', 'Signed (local)', 'Record SHA-256 signed', 'Status'],
        v.signatures.map((s: RecordSignature) => row({ 'data-meaning': s.meaning, 'data-changed': String(s.changedSince), 'data-audit-id': String(s.auditId) },
          h('strong', { class: 'rec-printed' }, s.printedName), s.user, s.role, MEANING_TEXT[s.meaning] ?? s.meaning, s.atUtc, s.atLocal,
          h('code', { class: 'rec-hash-short', title: s.recordSha256 }, short(s.recordSha256)),
          s.changedSince ? h('strong', { class: 'rec-changed-mark' }, '⚠ CHANGED SINCE SIGNED') : h('span', { class: 'rec-valid-mark' }, '✓ matches the record'))),
        'Not signed yet.'));
  }

  private amendments(v: RecordView): HTMLElement | null {
    if (v.amendments.length === 0 && v.signatures.length === 0) return null;
    const tz = v.record.site.timeZone;
    return section('amendments', `Amendments after the first signature (${v.amendments.length})`,
      table('rec-amendments', ['When', 'By', 'Change', 'What', 'Reason'],
        v.amendments.map((a) => row({ 'data-action': a.action, 'data-audit-id': String(a.auditId) }, zoned(a.at, tz), `${a.user} (${a.role})`, a.action, a.summary, a.reason)),
        'No changes since the first signature.'));
  }

  private async pdf(): Promise<void> {
    const dev = this.view?.record.console.device ?? this.device ?? 'record';
    outcome(this.note, 'pending', 'Preparing the PDF…');
    try {
      const headers = await download(`${this.base}/record.pdf${this.query}`, `${dev}_${this.sessionId}_record.pdf`);
      // The PDF is made from the record as it is now: say so when that is not the version on the screen.
      const pdfHash = headers.get('x-record-sha256');
      if (this.view && pdfHash && pdfHash !== this.view.sha256) {
        outcome(this.note, 'rej', `PDF downloaded, but it holds a NEWER version of the record (SHA-256 ${short(pdfHash)}, this page shows ${short(this.view.sha256)}): reload the page to see it.`);
      } else {
        outcome(this.note, 'ok', `PDF downloaded (record SHA-256 ${short(pdfHash ?? this.view?.sha256 ?? '')}).`);
      }
    } catch (err) {
      const busy = err instanceof ApiError && (err.body as { error?: string } | null)?.error === 'busy';
      const wait = err instanceof ApiError ? Number(err.headers?.get('retry-after')) : NaN;
      outcome(this.note, 'err', busy
        ? `PDF not downloaded: the gateway is making other PDFs; try again${Number.isFinite(wait) && wait > 0 ? ` in ${wait} s` : ' shortly'}.`
        : `PDF not downloaded: ${err instanceof ApiError ? `${err.status}: ${err.message}` : String(err)}`);
    }
  }

  /** The signing dialog: meaning, signing password and the 11.100(c) statement; stays open on a refusal. */
  private openSign(): void {
    const v = this.view;
    if (!v) return;
    const r = v.record;
    const signedHash = v.sha256;
    const meaning = h('select', { name: 'meaning', required: true }, ...DIALOG_MEANINGS.filter((m) => SIGNATURE_MEANINGS.includes(m)).map((m) => h('option', { value: m }, MEANING_TEXT[m])));
    const password = h('input', { type: 'password', name: 'password', autocomplete: 'off', required: true, maxlength: 256, 'aria-describedby': 'sign-error' });
    const statement = h('p', { class: 'sign-statement', 'data-role': 'statement' });
    const setStatement = () => {
      const m = meaning.value as SignatureMeaning;
      statement.textContent = `By signing I, ${this.app.user}, confirm that I ${MEANING_VERB[m]} the perfusion record of session ${r.session.sessionId} on console ${r.console.device} `
        + `exactly as shown (SHA-256 ${short(signedHash)}), with the meaning “${MEANING_TEXT[m]}”, and that this electronic signature is the legally binding `
        + 'equivalent of my handwritten signature.';
    };
    meaning.addEventListener('change', setStatement);
    setStatement();
    const error = h('div', { id: 'sign-error', class: 'sign-error', role: 'alert' });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'confirm-sign' }, 'Sign');
    const form = h('form', { class: 'dialog-form sign-form' },
      h('h2', { id: 'sign-title' }, 'Sign the perfusion record'),
      dl([['Session', `${r.session.sessionId} on ${r.console.device}`], ['Participant', text(r.session.participant)], ['Record SHA-256', h('code', { class: 'rec-hash' }, signedHash)]]),
      h('label', { class: 'field' }, h('span', {}, 'Meaning of the signature'), meaning),
      statement,
      h('label', { class: 'field' }, h('span', {}, `Signing password of ${this.app.user} (not the access token)`), password),
      error,
      h('div', { class: 'dialog-buttons' },
        h('button', { type: 'button', class: 'btn', 'data-action': 'cancel', onclick: () => close() }, 'Cancel'), submit));
    const dlg = h('dialog', { class: 'dialog sign-dialog', 'aria-labelledby': 'sign-title' }, form);
    const close = () => { password.value = ''; dlg.close(); dlg.remove(); };
    dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); close(); });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      void (async () => {
        submit.disabled = true;
        error.replaceChildren(h('span', { class: 'muted' }, 'Signing…'));
        try {
          const res = await api<{ signature: RecordSignature; view: RecordView | null }>(`${this.base}/signatures`, {
            method: 'POST',
            body: { meaning: meaning.value, password: password.value, recordSha256: signedHash, ...(this.device ? { device: this.device } : {}) },
          });
          close();
          // The signature is stored even when the gateway could not make the new view (it answers view: null).
          if (res.view) this.show(res.view);
          else void this.load();
          outcome(this.note, 'ok', `Signed: ${MEANING_TEXT[res.signature.meaning]} by ${res.signature.printedName} at ${res.signature.atLocal}.`);
        } catch (err) {
          password.value = '';
          error.replaceChildren(...this.refusal(err, close).filter((p): p is Node | string => Boolean(p)));
          submit.disabled = false;
          password.focus();
        }
      })();
    });
    document.body.append(dlg);
    dlg.showModal();
    meaning.focus();
  }

  /** What a refused signature says: nothing was signed, why, and what to do. */
  private refusal(err: unknown, close: () => void): Child[] {
    if (!(err instanceof ApiError)) return [`Not signed: ${String(err)}`];
    const code = (err.body as { error?: string } | null)?.error;
    const kind = (k: string, ...c: Child[]) => h('p', { 'data-refusal': k }, ...c);
    switch (code) {
      case 'signature_refused':
        return [kind('wrong_password', h('strong', {}, 'Wrong signing password: nothing was signed. '), 'After 5 wrong passwords in a row, signing is locked for 15 minutes.')];
      case 'signing_locked': {
        const secs = Number(err.headers?.get('retry-after'));
        const until = Number.isFinite(secs) && secs > 0 ? Date.now() + secs * 1000 : null;
        return [kind('locked', h('strong', {}, 'Signing is locked '), 'after too many wrong passwords',
          until ? ` until ${zoned(until, this.view?.record.site.timeZone ?? 'UTC').slice(11, 19)} (${Math.ceil(secs / 60)} min).` : '.', ' Nothing was signed.')];
      }
      case 'no_signing_password':
        return [kind('no_signing_password', h('strong', {}, 'You have no signing password yet: '), 'an administrator sets it with `msc-gateway users set-password`. Nothing was signed.')];
      case 'record_changed':
        return [kind('record_changed', h('strong', {}, 'The record changed since you opened it: '), 'its hash is no longer the one shown, so nothing was signed. Reload it, review it, then sign. '),
          h('button', { type: 'button', class: 'btn', 'data-action': 'reload-record', onclick: () => { close(); void this.load(); } }, 'Reload the record')];
      case 'session_running':
        return [kind('session_running', h('strong', {}, 'The session is still running: '), 'a record can be signed once its session has ended. Nothing was signed.')];
      case 'forbidden':
        return [kind('forbidden', h('strong', {}, 'Not allowed: '), err.message)];
      default:
        return [kind(code ?? 'error', h('strong', {}, 'Not signed: '), `${err.status} ${err.message}`)];
    }
  }

  update(): void { /* a record is static until reloaded */ }

  destroy(): void {
    this.gone = true;
    for (const d of document.querySelectorAll('dialog.sign-dialog')) d.remove();
  }
}

/** The record's logs as tables: alarms, device events, commands, annotations and suspected adverse events. */
import type { PerfusionRecord, RecordAlarmRow } from '../types.js';
import { FONT, heading, INK, paragraph, priorityColour, type Doc } from './layout.js';
import { drawTable, type Row } from './table.js';
import { formatSpan, formatValue, type TableTime } from './text.js';

const ADVERSE = '#b00020';

export async function drawAlarms(doc: Doc, r: PerfusionRecord, tt: TableTime): Promise<void> {
  heading(doc, `Alarms (${r.alarms.length})`);
  paragraph(doc, `One row per raise. Times: site local time (${tt.timeZone}), gateway clock; "after" is the time from raise to acknowledgement.`, { size: 7, font: FONT.italic, colour: INK.muted });
  const rows = function* (): Iterable<Row> {
    for (const a of r.alarms) yield alarmRow(a, tt, r.session.running);
  };
  await drawTable(doc, [
    { header: 'Raised', width: 11 }, { header: 'Rule / priority', width: 16 }, { header: 'Message', width: 20 },
    { header: 'Value / limit', width: 10 }, { header: 'Acknowledged', width: 15 }, { header: 'Cleared', width: 9 },
    { header: 'Shelving and other actions', width: 21 },
  ], rows(), { empty: 'No alarm was raised during the session.' });
}

function alarmRow(a: RecordAlarmRow, tt: TableTime, running: boolean): Row {
  const ack = a.ackedAt !== null
    ? `${tt.format(a.ackedAt)}\nby ${a.ackedBy ?? 'unknown'}\nafter ${formatSpan(a.timeToAckMs)}`
    : 'not acknowledged';
  const actions = [
    ...a.shelves.map((s) => `shelved ${tt.format(s.at)} by ${s.by ?? 'unknown'}${s.until !== null ? ` until ${tt.format(s.until)}` : ''}: ${s.reason ?? 'no reason given'}`),
    ...a.other.map((o) => `${o.kind} ${tt.format(o.at)}${o.by ? ` by ${o.by}` : ''}${o.reason ? `: ${o.reason}` : ''}`),
  ];
  return {
    mark: priorityColour(a.priority),
    cells: [
      tt.format(a.raisedAt),
      { text: `${a.rule}\n${a.priority}`, font: FONT.bold },
      a.message,
      `${formatValue(a.value)} / ${formatValue(a.limit)}`,
      { text: ack, colour: a.ackedAt === null ? INK.warn : undefined },
      a.clearedAt !== null ? tt.format(a.clearedAt) : running ? 'still active' : 'not cleared',
      actions.join('\n'),
    ],
  };
}

export async function drawEvents(doc: Doc, r: PerfusionRecord, tt: TableTime): Promise<void> {
  heading(doc, `Device events (${r.events.length})`);
  const rows = function* (): Iterable<Row> {
    for (const e of r.events) {
      yield { mark: priorityColour(e.prio), cells: [tt.format(e.t), { text: e.code, font: FONT.bold }, e.prio, e.active ? 'raised' : 'cleared', e.text] };
    }
  };
  await drawTable(doc, [
    { header: 'Time (console clock)', width: 14 }, { header: 'Code', width: 14 }, { header: 'Priority', width: 9 },
    { header: 'Raised / cleared', width: 10 }, { header: 'Text', width: 53 },
  ], rows(), { empty: 'No device event during the session.' });
}

export async function drawCommands(doc: Doc, r: PerfusionRecord, tt: TableTime): Promise<void> {
  heading(doc, `Commands (${r.commands.length})`);
  const rows = function* (): Iterable<Row> {
    for (const c of r.commands) {
      const verb = [c.verb ?? '(not sent)', ...c.args.map(argText)].join(' ');
      const ok = c.outcome === 'OK';
      yield {
        cells: [
          tt.format(c.at),
          { text: `${verb}${c.cmdId ? `\nid ${c.cmdId}` : ''}`, font: FONT.bold },
          `${c.user}\n(${c.role})`,
          c.reason ?? '-',
          { text: c.outcome, font: FONT.bold, colour: ok ? undefined : INK.warn },
        ],
      };
    }
  };
  await drawTable(doc, [
    { header: 'Requested (gateway)', width: 13 }, { header: 'Command', width: 22 }, { header: 'By', width: 16 },
    { header: 'Reason', width: 35 }, { header: 'Outcome', width: 14 },
  ], rows(), { empty: 'No command was sent during the session.' });
}

function argText(a: unknown): string {
  if (typeof a === 'string') return a;
  if (typeof a === 'number' || typeof a === 'boolean') return String(a);
  return JSON.stringify(a) ?? String(a);
}

export async function drawAnnotations(doc: Doc, r: PerfusionRecord, tt: TableTime): Promise<void> {
  const adverse = r.annotations.filter((a) => a.kind === 'adverse_event').length;
  heading(doc, `Annotations (${r.annotations.length}) and suspected adverse events (${adverse})`);
  const rows = function* (): Iterable<Row> {
    for (const a of r.annotations) {
      const ae = a.kind === 'adverse_event';
      yield {
        mark: ae ? ADVERSE : undefined,
        cells: [
          tt.format(a.t),
          ae ? { text: `ADVERSE EVENT\n${a.subtype ?? 'unspecified'}`, font: FONT.bold, colour: ADVERSE } : a.kind,
          a.text,
          `${a.user}\n(${a.role})`,
          `${tt.format(a.createdAt)}\naudit #${a.auditId}`,
        ],
      };
    }
  };
  await drawTable(doc, [
    { header: 'About (time)', width: 12 }, { header: 'Kind', width: 14 }, { header: 'Text', width: 48 },
    { header: 'By', width: 13 }, { header: 'Written', width: 13 },
  ], rows(), { empty: 'No annotation for the session.' });
}

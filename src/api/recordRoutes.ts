/**
 * Perfusion record routes (roles in src/auth/routeRoles.ts):
 * - `GET /api/sessions/:id/record?device=` (viewer): the RecordView JSON: the record, its SHA-256, the signature
 *   manifest and the amendments made after the first signature (src/record/service.ts).
 * - `GET /api/sessions/:id/record.pdf?device=` (viewer): the same view as a PDF (src/record/pdf.ts), an attachment
 *   `<device>_<session>_record.pdf` with the record's hash in `X-Record-SHA256`. A PDF costs CPU seconds and tens
 *   of MB while it is made, so at most RECORD_PDF_RENDERS are made at once; another is refused with 503 `busy` and
 *   `Retry-After`. The answer starts only when the layout is done, so a layout failure is a 500, not a cut PDF.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { sendBadRequest, sendError, zodIssues } from '../errors.js';
import { counter, gauge, type Registry } from '../metrics.js';
import { renderRecordPdf } from '../record/pdf.js';
import type { RecordView } from '../record/types.js';
import type { SessionService } from '../sessions/service.js';
import type { SessionRecord } from '../sessions/types.js';
import { DeviceParam, lookupSession } from './sessionLookup.js';

/** PDFs made at once. */
export const RECORD_PDF_RENDERS = 2;
/** Seconds a refused PDF request is told to wait. */
export const RECORD_PDF_RETRY_S = 5;

export const RECORD_PDF_OUTCOMES = ['sent', 'busy', 'failed', 'aborted'] as const;
export type RecordPdfOutcome = (typeof RECORD_PDF_OUTCOMES)[number];

/** The render slots and what became of each request, for /metrics. */
export class RecordPdfRenders {
  readonly outcomes: Record<RecordPdfOutcome, number> = { sent: 0, busy: 0, failed: 0, aborted: 0 };
  private running = 0;

  constructor(readonly max = RECORD_PDF_RENDERS) {}

  get inProgress(): number {
    return this.running;
  }

  tryAcquire(): boolean {
    if (this.running >= this.max) return false;
    this.running += 1;
    return true;
  }

  /** Frees a slot taken by tryAcquire (exactly once per slot) and counts how the request ended. */
  release(outcome: Exclude<RecordPdfOutcome, 'busy'>): void {
    this.running = Math.max(0, this.running - 1);
    this.outcomes[outcome] += 1;
  }

  refused(): void {
    this.outcomes.busy += 1;
  }

  registerMetrics(registry: Registry): void {
    counter(registry, {
      name: 'msc_record_pdfs_total', help: 'Perfusion record PDF requests, by outcome (sent, busy: refused at the render limit, failed, aborted by the client).',
      labelNames: ['outcome'], read: () => RECORD_PDF_OUTCOMES.map((outcome) => [{ outcome }, this.outcomes[outcome]] as const),
    });
    gauge(registry, { name: 'msc_record_pdf_renders', help: 'Perfusion record PDFs being made now.', read: () => this.running });
  }
}

export interface RecordRoutesOptions {
  sessions: SessionService;
  /** The gateway's RecordService (one instance for these routes and signing). */
  records: { view(rec: SessionRecord): Promise<RecordView> };
  renders: RecordPdfRenders;
}

const RecordQuery = z.object({ device: DeviceParam.optional() }).strict();

type Params = { Params: { id: string } };

export const recordRoutes: FastifyPluginAsync<RecordRoutesOptions> = async (app, opts) => {
  const { sessions, records, renders } = opts;

  app.get<Params>('/api/sessions/:id/record', async (req, reply) => {
    const q = RecordQuery.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    const record = lookupSession(sessions, req.params.id, q.data.device, reply);
    if (!record) return reply;
    return records.view(record);
  });

  app.get<Params>('/api/sessions/:id/record.pdf', async (req, reply) => {
    const q = RecordQuery.safeParse(req.query);
    if (!q.success) return sendBadRequest(reply, zodIssues(q.error, ['query']));
    const record = lookupSession(sessions, req.params.id, q.data.device, reply);
    if (!record) return reply;
    if (!renders.tryAcquire()) {
      renders.refused();
      reply.header('retry-after', String(RECORD_PDF_RETRY_S));
      return sendError(reply, 'busy', `${renders.max} record PDFs are being made: try again in ${RECORD_PDF_RETRY_S} s`);
    }
    let released = false;
    const release = (outcome: Exclude<RecordPdfOutcome, 'busy'>) => {
      if (released) return;
      released = true;
      renders.release(outcome);
    };
    let view: RecordView;
    try {
      view = await records.view(record);
    } catch (err) {
      release('failed');
      throw err; // storage errors: 503 from the server's error handler
    }
    const doc = renderRecordPdf(view);
    // Wait for the layout: its first bytes, its failure, or the client going away.
    const started = await new Promise<'ready' | 'gone' | Error>((resolve) => {
      doc.once('readable', () => resolve('ready'));
      doc.once('error', (err) => resolve(err));
      reply.raw.once('close', () => resolve('gone'));
    });
    if (started === 'gone') {
      doc.destroy(); // the renderer stops at its next slice
      release('aborted');
      return reply;
    }
    if (started instanceof Error) {
      release('failed');
      req.log.error({ err: started, device: record.device, session: record.sessionId }, 'record PDF: layout failed');
      return sendError(reply, 'internal', 'the record PDF could not be made: the gateway log has the detail');
    }
    let ended = false;
    doc.once('end', () => { ended = true; });
    doc.once('error', (err) => {
      req.log.error({ err, device: record.device, session: record.sessionId }, 'record PDF: stream failed while sent');
    });
    doc.once('close', () => release(ended ? 'sent' : 'aborted'));
    const fileName = `${record.device}_${record.sessionId}`.replace(/[^A-Za-z0-9_-]/g, '_') + '_record.pdf';
    return reply
      .header('content-type', 'application/pdf')
      .header('content-disposition', `attachment; filename="${fileName}"`)
      .header('x-record-sha256', view.sha256)
      .header('cache-control', 'no-store')
      .send(doc);
  });
};

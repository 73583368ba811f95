import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import type { DkimSigner } from '../mail/dkim';
import { DnsError, type DnsResolver } from '../policy/resolver';
import type { JobQueue } from '../store/roles';
import { buildReportMail, reportMessageId } from './message';
import { selectTlsRptRecord, tlsRptRecordName, type ReportDestination } from './record';
import { postReport } from './send-https';
import { reportIdentity } from './settings';

/** One built report, ready to go: the gzip and the names the RFC wants on it. */
export interface ReadyReport {
  domain: string;
  /** The UTC day covered, YYYY-MM-DD. */
  day: string;
  reportId: string;
  gzip: Buffer;
  /** `<submitter>!<domain>!<begin>!<end>!<unique>.json.gz` */
  fileName: string;
}

/** Where reports come from (the counters in the store and the report builder). */
export interface ReportSource {
  /** Policy domains with counted sessions on that day. */
  domains(day: string): Promise<string[]>;
  /** The report of a domain and day, or null when nothing was counted. */
  build(domain: string, day: string, ids: ReportIds): Promise<ReadyReport | null>;
}

export interface ReportIds {
  reportId: string;
  /** The file name's unique part. */
  uniqueId: string;
}

export interface DestinationResult {
  uri: string;
  kind: ReportDestination['kind'];
  ok: boolean;
  /** Worth trying again later (a network failure or a 5xx; not a missing DKIM key). */
  retryable: boolean;
  /** The queue id of the report mail, the HTTP status, or why it failed. */
  detail: string;
}

export type SendResult =
  | { status: 'sent'; reportId: string; results: DestinationResult[] }
  | { status: 'failed'; retryable: boolean; reason: string; reportId?: string; results: DestinationResult[] }
  | { status: 'no-record' | 'invalid-record' | 'nothing-to-report'; reason: string };

export interface ReportSenderDeps {
  config: Config;
  resolver: Pick<DnsResolver, 'resolveTxt' | 'lookup'>;
  store: Pick<JobQueue, 'enqueue'>;
  source: ReportSource;
  /** tlsrpt.dkim's signer; null: mailto destinations are skipped (never sent unsigned). */
  signer: DkimSigner | null;
  /** Trust store for https destinations; undefined: Node's default. */
  ca?: string[];
  logger: Logger;
  now?: () => number;
}

export interface ReportSender {
  /** Looks up the domain's record, builds the day's report and sends it to every rua; never throws for a send failure. */
  send(domain: string, day: string): Promise<SendResult>;
}

/** The reporting domain: tlsrpt.submitter, else the relay's hostname. */
export function reportSubmitter(config: Config): string {
  return reportIdentity(config).submitter;
}

/** Envelope sender and From of report mail: tlsrpt.from, else noreply-tlsrpt@<submitter>. */
export function reportFromAddress(config: Config): string {
  return config.tlsrpt.from ?? `noreply-tlsrpt@${reportSubmitter(config)}`;
}

/** A report id unique per send: the day, a random part, and the submitter (`20261129.3f9a…@relay.example`). */
export function newReportIds(day: string, submitter: string): ReportIds {
  const uniqueId = randomBytes(8).toString('hex');
  return { reportId: `${day.replace(/-/g, '')}.${uniqueId}@${submitter}`, uniqueId };
}

export function createReportSender(deps: ReportSenderDeps): ReportSender {
  const { config, resolver, store, source, signer, logger } = deps;
  const now = deps.now ?? Date.now;
  const submitter = reportSubmitter(config);
  const from = reportFromAddress(config);

  async function mail(report: ReadyReport, destination: Extract<ReportDestination, { kind: 'mailto' }>): Promise<DestinationResult> {
    const base = { uri: destination.uri, kind: destination.kind };
    if (!signer) return { ...base, ok: false, retryable: false, detail: 'no DKIM key configured (tlsrpt.dkim): report mail is never sent unsigned' };
    const date = new Date(now());
    const messageId = reportMessageId(from);
    const raw = await signer.sign(
      await buildReportMail({
        policyDomain: report.domain,
        submitter,
        reportId: report.reportId,
        from,
        to: destination.address,
        date,
        messageId,
        gzip: report.gzip,
        fileName: report.fileName,
        day: report.day,
      }),
    );
    // Queued as a notice (the MX plan without level or MTA-STS, opportunistic TLS, never diverted, no DSN) and marked
    // as a TLS report, so its sessions are not counted in the next report (RFC 8460 §5.3).
    const record = await store.enqueue(
      {
        from,
        recipients: [{ address: destination.address }],
        params: { notice: { kind: 'tlsrpt' }, tlsReport: true },
        client: { ip: '127.0.0.1', listener: 'tlsrpt', hostname: config.hostname },
        receivedAt: date.getTime(),
      },
      Readable.from([raw]),
      { messageId, from, date: date.toISOString(), tlsRequired: 'No' },
    );
    return { ...base, ok: true, retryable: false, detail: `queued as ${record.id}` };
  }

  async function post(report: ReadyReport, destination: Extract<ReportDestination, { kind: 'https' }>): Promise<DestinationResult> {
    const result = await postReport(destination.url, report.gzip, { lookup: resolver.lookup, ...(deps.ca ? { ca: deps.ca } : {}), timeout: config.tlsrpt.httpsTimeout });
    if (result.ok) return { uri: destination.uri, kind: 'https', ok: true, retryable: false, detail: `HTTP ${result.status}` };
    // A 4xx other than 408/429 says the endpoint will not take it; anything else may pass later.
    const status = result.status;
    const retryable = status === null || status >= 500 || status === 408 || status === 429;
    return { uri: destination.uri, kind: 'https', ok: false, retryable, detail: result.error };
  }

  return {
    async send(domain, day) {
      const name = tlsRptRecordName(domain);
      let txt: string[];
      try {
        txt = await resolver.resolveTxt(name);
      } catch (err) {
        if (err instanceof DnsError && !err.temporary) return { status: 'no-record', reason: `${name}: ${err.message}` };
        return { status: 'failed', retryable: true, reason: `looking up ${name} failed: ${(err as Error).message}`, results: [] };
      }
      const selected = selectTlsRptRecord(txt);
      if (!selected.ok) {
        const status = txt.some((t) => t.startsWith('v=TLSRPTv1')) ? 'invalid-record' : 'no-record';
        logger.warn({ event: 'tlsrpt-record-invalid', domain, day, reason: selected.reason }, 'no TLS report sent: the domain has no valid _smtp._tls record');
        return { status, reason: selected.reason };
      }
      const report = await source.build(domain, day, newReportIds(day, submitter));
      if (!report) return { status: 'nothing-to-report', reason: `no sessions counted for ${domain} on ${day}` };
      const results: DestinationResult[] = [];
      for (const destination of selected.record.rua) {
        let result: DestinationResult;
        try {
          result = destination.kind === 'mailto' ? await mail(report, destination) : await post(report, destination);
        } catch (err) {
          result = { uri: destination.uri, kind: destination.kind, ok: false, retryable: true, detail: (err as Error).message };
        }
        results.push(result);
        const fields = { event: result.ok ? 'tlsrpt-sent' : 'tlsrpt-send-failed', domain, day, reportId: report.reportId, rua: result.uri, detail: result.detail };
        if (result.ok) logger.info(fields, destination.kind === 'mailto' ? 'TLS report queued for delivery' : 'TLS report posted');
        else logger.warn({ ...fields, retryable: result.retryable }, 'TLS report not delivered to this rua');
      }
      // Delivering to any one rua is enough (RFC 8460 §3).
      if (results.some((r) => r.ok)) return { status: 'sent', reportId: report.reportId, results };
      const retryable = results.some((r) => r.retryable);
      return { status: 'failed', retryable, reason: results.map((r) => `${r.uri}: ${r.detail}`).join('; '), reportId: report.reportId, results };
    },
  };
}

import type { Config } from '../config/schema';
import type { TlsRptCounters } from '../store/roles';
import { buildReport, dayRange, gzipReport, reportFileName } from './report';
import type { ReportSource } from './send';
import { reportIdentity } from './settings';

/** Reports from the store's counters: the domains counted on a day, and each one's report, gzipped and named. */
export function storeReportSource(counters: Pick<TlsRptCounters, 'tlsRptDomains' | 'tlsRptRead'>, config: Config): ReportSource {
  const identity = reportIdentity(config);
  return {
    domains: (day) => counters.tlsRptDomains(day),
    async build(domain, day, ids) {
      const report = await buildReport({ counters, domain, day, ...identity, reportId: ids.reportId });
      if (report.policies.length === 0) return null;
      const { begin, end } = dayRange(day);
      return { domain, day, reportId: report['report-id'], gzip: gzipReport(report), fileName: reportFileName(identity.submitter, domain, begin, end, ids.uniqueId) };
    },
  };
}

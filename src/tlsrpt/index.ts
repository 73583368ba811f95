/**
 * TLS reporting (RFC 8460): counting the delivery engine's TLS sessions per policy domain and UTC day in the
 * store (recorder.ts, over mapping.ts), and the report built from those counters (report.ts, validate.ts).
 */
export * from './types';
export { buildReport, reportFileName, gzipReport, reportJson, dayRange, utcDay, addDays, rfc3339, MEDIA_TYPE_JSON, MEDIA_TYPE_GZIP, type BuildReportInput } from './report';
export { validateReport } from './validate';
export { resultType, sessionPolicy, countOf, noteOf, stsStrings, COUNTED_CODES } from './mapping';
export { policyKey, detailKey, parsePolicyKey, parseDetailKey, type PolicyKey, type DetailKey } from './keys';
export { createTlsRptRecorder, TLSRPT_KEEP_DAYS, type TlsRptRecorder } from './recorder';
export type { TlsSessionFacts } from '../evidence/tls-session';
export { reportIdentity, type ReportIdentity } from './settings';

import { checkDomain, type CheckReport } from '../outbound/check';
import type { PostureCheck, PostureDomain } from '../report';
import type { PartnerPosture } from '../report/types';

/*
 * The report's partner-posture section: `sealgate check` of each of the period's busiest domains, now. The report
 * module may not reach delivery or policy, so the CLI and the admin API build this check and hand it in.
 */

export interface PostureCheckOptions {
  /** Domains checked at once. */
  concurrency?: number;
  /** A domain whose check takes longer gets a row with verdict null and this timeout as its reason. */
  timeoutMs?: number;
  /** Stands in for checkDomain (tests). */
  check?: (domain: string) => Promise<CheckReport>;
}

export const POSTURE_CONCURRENCY = 4;
export const POSTURE_TIMEOUT_MS = 60_000;

type CheckRuntime = Parameters<typeof checkDomain>[1];

/** The policy a check found, named as the report names policy sources. */
function postureSource(report: CheckReport): string {
  if (report.mx.some((mx) => mx.dane?.state === 'secure-tlsa')) return 'dane';
  if (report.policy.source === 'mta-sts') return report.policy.mode === 'testing' ? 'mta-sts-testing' : 'mta-sts-enforce';
  return report.policy.source;
}

export function postureRow(domain: PostureDomain, report: CheckReport): PartnerPosture {
  return {
    domain: domain.domain,
    recipients: domain.recipients,
    verdict: report.verdict,
    reason: report.reason,
    policy: postureSource(report),
    mx: report.mx.map((mx) => ({ host: mx.host, protocol: mx.tls?.protocol ?? null, cipher: mx.tls?.cipher ?? null, compliant: mx.compliant })),
    negotiated: domain.negotiated,
  };
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`}`)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A posture check over the policy runtime: at most `concurrency` domains at once, each bounded by `timeoutMs`;
 * a check that fails or times out becomes a row with verdict null and the error as its reason. Rows keep the
 * order of the domains handed in (busiest first).
 */
export function partnerPostureCheck(runtime: CheckRuntime, options: PostureCheckOptions = {}): PostureCheck {
  const concurrency = Math.max(1, options.concurrency ?? POSTURE_CONCURRENCY);
  const timeoutMs = options.timeoutMs ?? POSTURE_TIMEOUT_MS;
  const check = options.check ?? ((domain: string) => checkDomain(domain, runtime));
  return async (domains) => {
    const rows: PartnerPosture[] = new Array<PartnerPosture>(domains.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < domains.length) {
        const index = next++;
        const domain = domains[index]!;
        try {
          rows[index] = postureRow(domain, await withTimeout(check(domain.domain), timeoutMs, `the check of ${domain.domain}`));
        } catch (err) {
          rows[index] = { domain: domain.domain, recipients: domain.recipients, verdict: null, reason: (err as Error).message, policy: null, mx: [], negotiated: domain.negotiated };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, domains.length) }, worker));
    return rows;
  };
}

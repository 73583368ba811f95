import type { Config } from '../config/schema';

/** Who the reports say they are from: the configured names, or their defaults from `hostname`. */
export interface ReportIdentity {
  organizationName: string;
  contactInfo: string;
  /** The reporting domain (file names, subject, TLS-Report-Submitter, DKIM d=). */
  submitter: string;
}

export function reportIdentity(config: Pick<Config, 'hostname' | 'tlsrpt'>): ReportIdentity {
  const submitter = config.tlsrpt.submitter ?? config.hostname;
  return {
    organizationName: config.tlsrpt.organizationName ?? config.hostname,
    contactInfo: config.tlsrpt.contactInfo ?? `postmaster@${submitter}`,
    submitter,
  };
}

import type { Command } from 'commander';
import { buildReport, dayRange, reportIdentity, utcDay, validateReport, type TlsReport } from '../../tlsrpt';
import { withStore } from '../context';
import { CliError } from '../errors';
import { formatTable } from '../format';

export function registerTlsRptCommands(program: Command): void {
  const tlsrpt = program.command('tlsrpt').description('TLS reporting (RFC 8460): what the relay counted per policy domain and day');
  tlsrpt
    .command('preview')
    .description('print the TLS-RPT report that would be sent for DOMAIN (default: today so far, UTC)')
    .argument('<domain>', 'the policy domain (a recipient domain)')
    .option('--date <YYYY-MM-DD>', 'the UTC day to report on (default: today)')
    .option('--json', 'print the report exactly as it would be sent (RFC 8460 JSON)')
    .action(async (rawDomain: string, opts: { date?: string; json?: boolean }, command: Command) => {
      const domain = rawDomain.trim().toLowerCase().replace(/\.$/, '');
      if (!/^[a-z0-9._-]+$/.test(domain) || domain.length > 253) throw new CliError(`not a domain name: ${rawDomain}`, 2);
      const day = opts.date ?? utcDay(Date.now());
      try {
        dayRange(day);
      } catch {
        throw new CliError(`--date must be a day as YYYY-MM-DD: ${day}`, 2);
      }
      const report = await withStore(command, (store, loaded) => buildReport({ counters: store, domain, day, ...reportIdentity(loaded.config) }));
      const problems = validateReport(report);
      if (problems.length > 0) throw new CliError(`the report does not validate: ${problems.join('; ')}`);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      process.stdout.write(previewText(report, domain, day));
    });
}

/** A short table: one line per policy, then one per failure detail. */
function previewText(report: TlsReport, domain: string, day: string): string {
  const head = `TLS-RPT report for ${domain}, ${day} (UTC), report-id ${report['report-id']}\n`;
  if (report.policies.length === 0) return `${head}no sessions counted\n`;
  const policies = report.policies.map((p) => [
    p.policy['policy-type'],
    p.policy['mx-host'].join(',') || '-',
    String(p.summary['total-successful-session-count']),
    String(p.summary['total-failure-session-count']),
  ]);
  let text = `${head}${formatTable(['POLICY', 'MX-HOST', 'SUCCESSFUL', 'FAILED'], policies)}\n`;
  const details = report.policies.flatMap((p) =>
    p['failure-details'].map((d) => [
      p.policy['policy-type'],
      d['result-type'],
      d['receiving-mx-hostname'] ?? '-',
      d['receiving-ip'] ?? '-',
      String(d['failed-session-count']),
      d['failure-reason-code'] ?? '',
    ]),
  );
  if (details.length > 0) text += `\n${formatTable(['POLICY', 'RESULT', 'MX', 'IP', 'COUNT', 'REASON'], details)}\n`;
  return text;
}

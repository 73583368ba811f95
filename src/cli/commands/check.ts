import type { Command } from 'commander';
import { checkDomain, VERDICT_EXIT_CODES, type CheckReport, type MxReport } from '../../outbound/check';
import { createPolicyRuntime, storePolicyCache } from '../../policy';
import { withStore } from '../context';
import { CliError } from '../errors';

/** `sealgate check DOMAIN [--json]`: what the relay would do for a domain, and why. Exit 0/3/4/5 = deliver/divert/defer/bounce. */
export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('show what the relay would do for a recipient domain: MX, MTA-STS, TLS of each MX, verdict (exit 0 deliver, 3 divert, 4 defer, 5 bounce)')
    .argument('<domain>', 'recipient domain, e.g. example.com')
    .option('--json', 'print one JSON document')
    .action(async (domain: string, opts: { json?: boolean }, command: Command) => {
      const name = domain.trim().replace(/\.$/, '').toLowerCase();
      if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/.test(name) || name.length > 253) {
        throw new CliError(`"${domain}" is not a domain name (use A-labels for international names)`, 2);
      }
      const report = await withStore(command, async (store, loaded) => {
        // No logger: the report itself carries every fetch and lookup error.
        const runtime = createPolicyRuntime(loaded.config, { cache: storePolicyCache(store) });
        return checkDomain(name, runtime);
      });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      process.exitCode = VERDICT_EXIT_CODES[report.verdict];
    });
}

export function formatReport(report: CheckReport): string {
  const lines: string[] = [];
  lines.push(`Domain:   ${report.domain}`);
  lines.push(`Verdict:  ${report.verdict.toUpperCase()}${report.via ? ` via ${report.via}` : ''}`);
  lines.push(`Reason:   ${report.reason}`);
  const p = report.policy;
  lines.push(`Policy:   level ${p.level}, source ${p.source}${p.mode ? `, MTA-STS ${p.mode} (id ${p.id ?? '-'})` : ''}`);
  const sts = report.mtaSts;
  const stsLine = sts.policy ? `${sts.policy.mode}, mx ${sts.policy.mx.join(' ') || '-'}, max_age ${sts.policy.maxAge} (${sts.source})` : 'no policy';
  lines.push(`MTA-STS:  record ${sts.record ? `id ${sts.record.id}` : 'none'}; ${stsLine}${sts.error ? `; error: ${sts.error}` : ''}`);
  for (const entry of report.wouldFail) lines.push(`  would fail under enforce: ${entry.host}: ${entry.reason}${entry.detail ? ` (${entry.detail})` : ''}`);
  if (report.mx.length > 0) lines.push('MX hosts:');
  for (const mx of report.mx) lines.push(...formatMx(mx));
  return `${lines.join('\n')}\n`;
}

function formatMx(mx: MxReport): string[] {
  const lines = [`  ${mx.preference} ${mx.host} [${mx.addresses.join(', ') || 'no address'}]${mx.stsMatch === null ? '' : mx.stsMatch ? ' (in MTA-STS policy)' : ' (NOT in MTA-STS policy)'}`];
  lines.push(`      ${mx.compliant ? 'OK' : (mx.classification ?? 'skipped').toUpperCase()}: ${mx.reason}`);
  if (mx.address) lines.push(`      probed ${mx.address}:${mx.port}; STARTTLS ${mx.starttls === null ? 'unknown' : mx.starttls ? 'offered' : 'not offered'}`);
  if (mx.tls) lines.push(`      TLS ${mx.tls.protocol ?? '?'} ${mx.tls.cipher ?? '?'} group ${mx.tls.group ?? '?'}`);
  if (mx.certificate) {
    const c = mx.certificate;
    lines.push(
      `      certificate ${c.subject ?? '?'}; issuer ${c.issuer ?? '?'}; valid to ${c.validTo ?? '?'}; ${c.trusted ? 'trusted' : `NOT trusted (${c.error ?? '?'})`}; ${c.nameMatch ? 'name matches' : 'name does NOT match'}`,
    );
  }
  if (mx.offered) lines.push(`      offers (permissive client): ${mx.offered.protocol ?? '?'} ${mx.offered.cipher ?? '?'}`);
  return lines;
}

import type { Command } from 'commander';
import { parseRoute } from '../../config/schema';
import { checkDomain, probeExitCode, probeMx, VERDICT_EXIT_CODES, type CheckReport, type MxProbeReport, type MxReport } from '../../outbound/check';
import { createPolicyRuntime, storePolicyCache } from '../../policy';
import { withStore } from '../context';
import { CliError } from '../errors';

/** `sealgate check DOMAIN [--json]`: what the relay would do for a domain, and why. Exit 0/3/4/5 = deliver/divert/defer/bounce. */
export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description('show what the relay would do for a recipient domain: MX, MTA-STS, TLS of each MX, verdict (exit 0 deliver, 3 divert, 4 defer, 5 bounce)')
    .argument('<domain>', 'recipient domain, e.g. example.com (with --mx: the next-hop domain whose policy applies)')
    .option('--json', 'print one JSON document')
    .option(
      '--mx <host[:port]>',
      'probe this one host instead of the MX hosts (posttls-finger style): EHLO, certificate chain, TLS, NIST profile (exit 0 compliant, 3 non-compliant, 4 transient, 5 permanent)',
    )
    .action(async (domain: string, opts: { json?: boolean; mx?: string }, command: Command) => {
      const name = domain.trim().replace(/\.$/, '').toLowerCase();
      if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/.test(name) || name.length > 253) {
        throw new CliError(`"${domain}" is not a domain name (use A-labels for international names)`, 2);
      }
      if (opts.mx !== undefined) {
        const mx = opts.mx;
        const probe = await withStore(command, async (store, loaded) => {
          const target = parseRoute(mx.trim(), loaded.config.outbound.port);
          if (!target) throw new CliError(`--mx "${mx}" is not a host name or address with an optional :port (e.g. mx1.example.org:25, [2001:db8::1]:25)`, 2);
          const runtime = createPolicyRuntime(loaded.config, { cache: storePolicyCache(store) });
          return probeMx(target, name, runtime, { ipv6: loaded.config.outbound.ipv6 });
        });
        process.stdout.write(opts.json ? `${JSON.stringify(probe, null, 2)}\n` : formatProbe(probe));
        process.exitCode = probeExitCode(probe);
        return;
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
  lines.push(report.daneEnabled ? 'DANE:     on (validating resolver)' : 'DANE:     off (dns.validating is false)');
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
  if (mx.dane) {
    const records = mx.dane.records.map((r) => `${r.usage} ${r.selector} ${r.matchingType}`).join(', ');
    const match = mx.dane.match ? `; matched ${mx.dane.match.usage} ${mx.dane.match.selector} ${mx.dane.match.matchingType} at depth ${mx.dane.match.depth}` : '';
    lines.push(`      DANE ${mx.dane.state}${records ? ` (${records})` : ''}${match}: ${mx.dane.reason}`);
  }
  return lines;
}

/** The `--mx` report as text, in the order posttls-finger prints a session. */
export function formatProbe(report: MxProbeReport): string {
  const lines: string[] = [];
  const p = report.policy;
  lines.push(
    `Domain:   ${report.domain} (level ${p.level}, source ${p.source}${p.mode ? `, MTA-STS ${p.mode} (id ${p.id ?? '-'})` : ''}${report.requireValidCert ? ', valid certificate required' : ''})`,
  );
  if (report.mtaStsError) lines.push(`MTA-STS:  ${report.mtaStsError}`);
  lines.push(`Host:     ${report.host} port ${report.port} [${report.addresses.join(', ') || 'no address'}]${report.address ? `, probed ${report.address}` : ''}`);
  lines.push(`Verdict:  ${report.compliant ? 'OK' : (report.classification ?? 'non-compliant').toUpperCase()} (${report.code}): ${report.reason}`);
  if (report.ehlo.beforeTls) lines.push(`EHLO:     ${report.ehlo.beforeTls.join(' ') || '-'}`);
  lines.push(`STARTTLS: ${report.starttls === null ? 'unknown' : report.starttls ? 'offered' : 'not offered'}`);
  if (report.tls) {
    const t = report.tls;
    lines.push(`TLS:      ${t.protocol ?? '?'} ${t.cipher ?? '?'} group ${t.group ?? '?'}${t.groupBits ? ` (${t.groupBits} bits)` : ''}${report.offered ? ' (permissive client only)' : ''}`);
  }
  if (report.ehlo.afterTls) lines.push(`EHLO/TLS: ${report.ehlo.afterTls.join(' ') || '-'}`);
  if (report.profile) lines.push(`Profile:  NIST SP 800-52r2 ${report.profile.compliant ? 'compliant' : `NOT compliant: ${report.profile.problems.join('; ')}`}`);
  else if (report.offered) lines.push('Profile:  NIST SP 800-52r2 NOT compliant: no handshake with the profile');
  if (report.verified !== null) {
    lines.push(`Chain:    ${report.verified ? 'verified' : `NOT verified (${report.verifyError ?? '?'})`}; ${report.nameMatch ? `name matches ${report.host}` : `name does NOT match ${report.host}`}`);
  }
  for (const [i, cert] of report.chain.entries()) {
    lines.push(`  ${i} subject ${cert.subject ?? '?'}`);
    lines.push(`    issuer  ${cert.issuer ?? '?'}`);
    if (cert.san.length > 0) lines.push(`    SAN     ${cert.san.join(', ')}`);
    lines.push(`    key     ${cert.keyType ?? '?'} ${cert.keyBits ?? '?'} bits${cert.curve ? ` (${cert.curve})` : ''}`);
    lines.push(`    valid   ${cert.validFrom ?? '?'} to ${cert.validTo ?? '?'}`);
    lines.push(`    sha256  ${cert.sha256}`);
    lines.push(`    spki    ${cert.spkiSha256} (SHA-256 of the public key)`);
  }
  return `${lines.join('\n')}\n`;
}

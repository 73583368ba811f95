import type { Command } from 'commander';
import { createResolver } from '../../policy/resolver';
import { claimReport, utcDay } from '../../tlsrpt/schedule';
import { createConfiguredSender } from '../../tlsrpt/runtime';
import type { SendResult } from '../../tlsrpt/send';
import { storeReportSource } from '../../tlsrpt/source';
import { cliLogger, withStore } from '../context';
import { CliError } from '../errors';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The `tlsrpt` command group, shared by its subcommands (preview, send). */
export function tlsRptCommandGroup(program: Command): Command {
  return program.commands.find((c) => c.name() === 'tlsrpt') ?? program.command('tlsrpt').description('SMTP TLS reporting (RFC 8460): the daily reports to domains that ask for them');
}

function describe(domain: string, day: string, result: SendResult): string {
  if (result.status === 'sent' || result.status === 'failed') {
    const lines = result.results.map((r) => `  ${r.ok ? 'ok    ' : 'FAILED'} ${r.uri}: ${r.detail}`);
    const head = result.status === 'sent' ? `TLS report ${result.reportId} for ${domain}, ${day}: sent` : `TLS report for ${domain}, ${day}: not delivered to any rua`;
    return [head, ...lines].join('\n');
  }
  return `No TLS report for ${domain}, ${day} (${result.status}): ${result.reason}`;
}

/**
 * `sealgate tlsrpt send DOMAIN [--date D]`: builds the report of one domain and UTC day from the store's counters and
 * sends it now, to every rua of the domain's `_smtp._tls` record (report mail is queued in the store; the running relay
 * delivers it). It takes the day's claim, so the daily run of any relay on the store does not send it again.
 */
export function registerTlsRptSendCommand(program: Command): void {
  tlsRptCommandGroup(program)
    .command('send <domain>')
    .description('build and send the TLS report of one domain and UTC day now (default: yesterday, the last finished day)')
    .option('--date <day>', 'the UTC day, YYYY-MM-DD')
    .option('--json', 'print the result as JSON')
    .action(async (rawDomain: string, opts: { date?: string; json?: boolean }, command: Command) => {
      const domain = rawDomain.trim().replace(/\.$/, '').toLowerCase();
      const day = opts.date ?? utcDay(Date.now() - 86_400_000);
      if (!DAY.test(day) || utcDay(Date.parse(`${day}T00:00:00Z`)) !== day) throw new CliError(`--date must be a day, YYYY-MM-DD (got ${day})`, 2);
      const result = await withStore(command, async (store, loaded) => {
        const { config } = loaded;
        const logger = cliLogger(config.log.level);
        let sender;
        try {
          sender = createConfiguredSender({ config, store, resolver: createResolver(config.dns), source: storeReportSource(store, config), logger });
        } catch (err) {
          throw new CliError((err as Error).message, 2);
        }
        const first = await claimReport(store, domain, day);
        if (!first) process.stderr.write(`sealgate: note: the report of ${domain} for ${day} was already claimed (sent by a relay or an earlier command); sending it again\n`);
        return sender.send(domain, day);
      });
      if (opts.json) process.stdout.write(`${JSON.stringify({ domain, day, ...result }, null, 2)}\n`);
      else process.stdout.write(`${describe(domain, day, result)}\n`);
      if (result.status !== 'sent') process.exitCode = 1;
    });
}

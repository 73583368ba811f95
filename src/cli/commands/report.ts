import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { partnerPostureCheck } from '../../admin/posture';
import { createPolicyRuntime, storePolicyCache } from '../../policy';
import { buildReport, produceReport } from '../../report';
import { parseReportFormat, parseReportRequest, ReportRequestError } from '../../report/period';
import type { ReportFormat } from '../../report/types';
import { withStore } from '../context';
import { CliError } from '../errors';

interface ReportOptions {
  from: string;
  to: string;
  domain?: string;
  sender?: string;
  format?: string;
  out?: string;
  posture: boolean;
}

/** Formats that are not text: never written to a terminal. */
const BINARY: readonly ReportFormat[] = ['pdf'];

/**
 * `sealgate report --from D --to D [--domain D] [--sender A] [--format json|csv|html|pdf] [--out FILE] [--no-posture]`:
 * the compliance report of a period from the evidence log. Exit 0 written, 2 usage, 1 failure.
 */
export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('the compliance report of a period from the evidence log: outcomes per recipient domain, TLS, diversions, portal pickups, admin actions, chain status')
    .requiredOption('--from <date>', 'first day (YYYY-MM-DD, UTC) or an ISO 8601 time with its zone')
    .requiredOption('--to <date>', 'last day, included (YYYY-MM-DD, UTC), or an ISO 8601 time with its zone (excluded)')
    .option('--domain <domain>', 'only recipients in this domain')
    .option('--sender <address>', 'only messages from this envelope sender ("" for the null sender)')
    .option('--format <format>', 'json, csv, html or pdf', 'json')
    .option('--out <file>', 'write the report to this file instead of stdout (needed for pdf on a terminal)')
    .option('--no-posture', 'skip the partner-posture checks (`sealgate check` of the busiest domains)')
    .action(async (opts: ReportOptions, command: Command) => {
      let format: ReportFormat;
      let request;
      try {
        format = parseReportFormat(opts.format);
        request = parseReportRequest({ from: opts.from, to: opts.to, ...(opts.domain === undefined ? {} : { domain: opts.domain }), ...(opts.sender === undefined ? {} : { sender: opts.sender }) });
      } catch (err) {
        if (err instanceof ReportRequestError) throw new CliError(err.message, 2);
        throw err;
      }
      if (opts.out === undefined && BINARY.includes(format) && process.stdout.isTTY) {
        throw new CliError(`a ${format} report is binary: give --out FILE or redirect stdout`, 2);
      }
      const data = await withStore(command, async (store, loaded) => {
        const posture = opts.posture ? partnerPostureCheck(createPolicyRuntime(loaded.config, { cache: storePolicyCache(store) })) : undefined;
        try {
          return await buildReport(store, request, {
            relay: loaded.config.hostname,
            now: Date.now(),
            postureDomains: loaded.config.reports.postureDomains,
            ...(posture ? { posture } : {}),
          });
        } catch (err) {
          throw new CliError(`cannot build the report: ${(err as Error).message}`);
        }
      });
      let produced;
      try {
        produced = await produceReport(format, data);
      } catch (err) {
        throw new CliError(`cannot render the ${format} report: ${(err as Error).message}`);
      }
      if (opts.out === undefined) {
        process.stdout.write(produced.body);
        return;
      }
      try {
        // Addresses and domains: readable by the owner and the group only.
        await writeFile(opts.out, produced.body, { mode: 0o640 });
      } catch (err) {
        throw new CliError(`cannot write ${opts.out}: ${(err as Error).message}`);
      }
      process.stderr.write(`sealgate: wrote ${opts.out} (${format}, ${produced.body.length} bytes)\n`);
    });
}

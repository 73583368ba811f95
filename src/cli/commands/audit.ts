import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { auditAnswer, recipientAnswer } from '../../admin/views';
import type { AuditEntry } from '../../evidence/delivery';
import type { Config } from '../../config/schema';
import type { Logger } from '../../log/logger';
import { toPortalEventView, toPortalItemView, type PortalEventView, type PortalItemView } from '../../portal/service';
import { openPortalParts } from '../../portal/service/wiring';
import type { Store } from '../../store/types';
import { cliLogger, withStore } from '../context';
import { CliError } from '../errors';
import { parseSince } from './fallback';
import { describeEvent, type PortalCliOptions } from './portal';

// Shared with the HTTP API (src/admin/views.ts).
export { auditEntries } from '../../admin/views';

async function auditRecipient(command: Command, recipient: string, since: number | undefined, json: boolean): Promise<void> {
  const { items: outcomes, logError } = await withStore(command, (store) => recipientAnswer(store, recipient, since));
  if (logError !== undefined) process.stderr.write(`sealgate: the evidence log could not be read (${logError}); showing the queue records only\n`);
  if (json) {
    process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
    return;
  }
  if (outcomes.length === 0) {
    process.stdout.write(`No message to ${recipient}${since !== undefined ? ` since ${new Date(since).toISOString()}` : ''} in the queue, its kept records or the evidence log.\n`);
    return;
  }
  for (const o of outcomes) {
    process.stdout.write(
      `Message ${o.queueId}${o.messageId ? ` ${o.messageId}` : ''} from ${o.from || '<>'}, received ${o.receivedAt}: ${o.recipient} ${o.state.toUpperCase()}${o.deletedAt ? ` (message deleted ${o.deletedAt})` : ''}${o.recordGone ? ' (message record deleted/purged; from the evidence log)' : ''}\n`,
    );
    process.stdout.write(o.entries.length === 0 ? '    no delivery attempt yet\n' : `${o.entries.map((e) => describe(e).replace(/^/gm, '    ')).join('\n')}\n`);
  }
  process.stdout.write(`${outcomes.length} message${outcomes.length === 1 ? '' : 's'}\n`);
}

/** One audit entry as text (exported for tests). */
export function describe(entry: AuditEntry): string {
  const lines = [`${entry.at}  ${entry.recipient}  ${entry.outcome.toUpperCase()}  (${entry.reason})`];
  if (entry.mx) lines.push(`    via ${entry.mx} [${entry.ip ?? '?'}]`);
  if (entry.tls) lines.push(`    TLS ${entry.tls.protocol ?? '?'} ${entry.tls.cipher ?? '?'} group ${entry.tls.group ?? '?'}`);
  if (entry.certificate) {
    const c = entry.certificate;
    lines.push(`    certificate ${c.subject ?? '?'} issued by ${c.issuer ?? '?'}, valid to ${c.validTo ?? '?'}, trusted ${c.trusted ? 'yes' : 'no'}, name match ${c.nameMatch ? 'yes' : 'no'}`);
  }
  if (entry.policy) {
    const dane = entry.policy.dane !== undefined ? `, DANE ${entry.policy.dane ?? '-'}` : '';
    lines.push(`    policy ${entry.policy.source}, level ${entry.policy.level}${entry.policy.mode ? `, MTA-STS ${entry.policy.mode} id ${entry.policy.id ?? '?'}` : ''}${dane}`);
  }
  const matched = entry.mxAttempts.find((a) => a.class === 'ok' && a.dane?.match)?.dane?.match;
  if (matched) lines.push(`    DANE TLSA ${matched.usage} ${matched.selector} ${matched.matchingType} matched at depth ${matched.depth}`);
  if (entry.reply) lines.push(`    reply ${entry.reply}`);
  for (const attempt of entry.mxAttempts.filter((a) => a.class !== 'ok')) {
    const dane = attempt.dane ? ` (DANE ${attempt.dane.state}, ${attempt.dane.result})` : '';
    lines.push(`    tried ${attempt.mx} [${attempt.ip ?? '?'}]: ${attempt.class}, ${attempt.code}: ${attempt.reason}${dane}`);
  }
  return lines.join('\n');
}

export interface PortalTrail {
  item: PortalItemView;
  events: PortalEventView[];
}

/** The portal items of these messages with their trails; undefined (with the reason) when the portal cannot be opened. */
async function portalTrails(deps: { config: Config; logger: Logger; store: Store }, queueIds: string[], options: PortalCliOptions): Promise<{ trails?: PortalTrail[]; error?: string }> {
  // No key file: the portal never ran here, so there are no items (and a read-only command creates no keys).
  if (!deps.config.portal.enabled || !existsSync(deps.config.portal.keyFile)) return { trails: [] };
  try {
    const { copies } = await (options.portalParts ?? openPortalParts)(deps);
    const ids = new Set(queueIds);
    const trails: PortalTrail[] = [];
    for (const item of (await copies.list()).filter((i) => ids.has(i.queueId))) {
      trails.push({ item: toPortalItemView(item), events: (await copies.events(item.id)).map(toPortalEventView) });
    }
    return { trails };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

export function registerAuditCommand(program: Command, options: PortalCliOptions = {}): void {
  program
    .command('audit [id]')
    .description('show the delivery evidence for a queue id or Message-ID, then the portal audit trail of its portal items; or, with --recipient, every outcome for one recipient')
    .option('--json', 'print a JSON array of the delivery evidence for scripts')
    .option('--portal', 'with --json: print {entries, portal} with the portal items and their trails')
    .option('--recipient <address>', 'instead of an id: every message to this recipient with its outcome and evidence ("did my mail to X go out?")')
    .option('--since <time>', 'with --recipient: only messages received since this date or within this age (2h, 7d)', parseSince)
    .action(async (id: string | undefined, opts: { json?: boolean; portal?: boolean; recipient?: string; since?: number }, command: Command) => {
      if (opts.recipient !== undefined) {
        if (id !== undefined) throw new CliError('give either an id or --recipient, not both', 2);
        await auditRecipient(command, opts.recipient, opts.since, opts.json === true);
        return;
      }
      if (id === undefined) throw new CliError('give a queue id or Message-ID, or --recipient A [--since T]', 2);
      if (opts.since !== undefined) throw new CliError('--since goes with --recipient', 2);
      const wantPortal = !opts.json || opts.portal === true;
      const { answer, portal } = await withStore(command, async (store, loaded) => {
        const found = await auditAnswer(store, id);
        const queueIds = [...found.messages.map((m) => m.id), ...found.logged.map((m) => m.id)];
        const trails = queueIds.length > 0 && wantPortal ? await portalTrails({ config: loaded.config, logger: cliLogger(loaded.config.log.level), store }, queueIds, options) : {};
        return { answer: found, portal: trails };
      });
      const { messages, logged, entries } = answer;
      if (messages.length === 0 && logged.length === 0) throw new CliError(`no message with queue id or Message-ID ${id}`, 6);
      if (answer.logError !== undefined) process.stderr.write(`sealgate: the evidence log could not be read (${answer.logError}); showing the queue records only\n`);
      if (opts.json && !opts.portal) {
        process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
        return;
      }
      if (opts.json) {
        if (portal.error !== undefined) throw new CliError(`cannot open the portal: ${portal.error}`);
        process.stdout.write(`${JSON.stringify({ entries, portal: portal.trails ?? [] }, null, 2)}\n`);
        return;
      }
      for (const message of messages) {
        process.stdout.write(
          `Message ${message.id}${message.headers.messageId ? ` ${message.headers.messageId}` : ''} from ${message.from || '<>'}, received ${new Date(message.receivedAt).toISOString()}${message.deletedAt !== undefined ? `, deleted ${new Date(message.deletedAt).toISOString()} (evidence kept)` : ''}\n`,
        );
      }
      for (const message of logged) {
        const gone = message.deletedAt !== null ? `deleted ${message.deletedAt} by ${message.deletedBy ?? '?'}` : 'deleted/purged';
        process.stdout.write(
          `Message ${message.id}${message.messageId ? ` ${message.messageId}` : ''} from ${message.from || '<>'}${message.receivedAt ? `, received ${message.receivedAt}` : ''}: message record ${gone}; from the evidence log\n`,
        );
      }
      process.stdout.write(entries.length === 0 ? 'No delivery attempts yet.\n' : `${entries.map(describe).join('\n')}\n`);
      if (portal.error !== undefined) process.stderr.write(`sealgate: portal trail not shown: ${portal.error}\n`);
      for (const trail of portal.trails ?? []) {
        process.stdout.write(`Portal item ${trail.item.id} (${trail.item.state}, expires ${trail.item.expiresAt})\n${trail.events.map(describeEvent).join('\n')}\n`);
      }
    });
}

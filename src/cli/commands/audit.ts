import type { Command } from 'commander';
import { auditTrail, findMessages } from '../../admin/views';
import type { AuditEntry } from '../../evidence/delivery';
import { withStore } from '../context';
import { CliError } from '../errors';

// Shared with the HTTP API (src/admin/views.ts).
export { auditEntries } from '../../admin/views';

function describe(entry: AuditEntry): string {
  const lines = [`${entry.at}  ${entry.recipient}  ${entry.outcome.toUpperCase()}  (${entry.reason})`];
  if (entry.mx) lines.push(`    via ${entry.mx} [${entry.ip ?? '?'}]`);
  if (entry.tls) lines.push(`    TLS ${entry.tls.protocol ?? '?'} ${entry.tls.cipher ?? '?'} group ${entry.tls.group ?? '?'}`);
  if (entry.certificate) {
    const c = entry.certificate;
    lines.push(`    certificate ${c.subject ?? '?'} issued by ${c.issuer ?? '?'}, valid to ${c.validTo ?? '?'}, trusted ${c.trusted ? 'yes' : 'no'}, name match ${c.nameMatch ? 'yes' : 'no'}`);
  }
  if (entry.policy) lines.push(`    policy ${entry.policy.source}, level ${entry.policy.level}${entry.policy.mode ? `, MTA-STS ${entry.policy.mode} id ${entry.policy.id ?? '?'}` : ''}`);
  if (entry.reply) lines.push(`    reply ${entry.reply}`);
  for (const attempt of entry.mxAttempts.filter((a) => a.class !== 'ok')) lines.push(`    tried ${attempt.mx} [${attempt.ip ?? '?'}]: ${attempt.class}, ${attempt.code}: ${attempt.reason}`);
  return lines.join('\n');
}

export function registerAuditCommand(program: Command): void {
  program
    .command('audit <id>')
    .description('show the delivery evidence for a queue id or Message-ID')
    .option('--json', 'print a JSON array for scripts')
    .action(async (id: string, opts: { json?: boolean }, command: Command) => {
      const messages = await withStore(command, (store) => findMessages(store, id));
      if (messages.length === 0) throw new CliError(`no message with queue id or Message-ID ${id}`, 6);
      const entries = auditTrail(messages);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
        return;
      }
      for (const message of messages) {
        process.stdout.write(
          `Message ${message.id}${message.headers.messageId ? ` ${message.headers.messageId}` : ''} from ${message.from || '<>'}, received ${new Date(message.receivedAt).toISOString()}\n`,
        );
      }
      process.stdout.write(entries.length === 0 ? 'No delivery attempts yet.\n' : `${entries.map(describe).join('\n')}\n`);
    });
}

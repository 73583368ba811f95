import os from 'node:os';
import type { Command } from 'commander';
import { parseAdminDuration } from '../../admin/durations';
import type { LoadedConfig } from '../../config/load';
import { FallbackService } from '../../fallback';
import { PORTAL_STATES, PortalService, isPortalState, toPortalItemView, type ExtendBy, type PortalEventView } from '../../portal/service';
import { openPortalParts, type PortalPartsFactory } from '../../portal/service/wiring';
import type { Store } from '../../store/types';
import { asCliError, recordAction } from '../admin-actions';
import { cliLogger, withStore } from '../context';
import { CliError } from '../errors';
import { formatTable } from '../format';

export interface PortalCliOptions {
  /** Builds keyring, copies and notices over the open store (tests pass in-memory ones). */
  portalParts?: PortalPartsFactory;
}

/** Who runs the CLI, for the item's trail and the audit log: "cli:<login name>". */
export function cliActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return `cli:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

/** Opens the store and the portal parts, runs `run` with a PortalService; store errors become exit codes. */
export async function withPortal<T>(command: Command, options: PortalCliOptions, run: (service: PortalService, store: Store, loaded: LoadedConfig) => Promise<T>): Promise<T> {
  return withStore(command, async (store, loaded) => {
    const logger = cliLogger(loaded.config.log.level);
    let parts;
    try {
      parts = await (options.portalParts ?? openPortalParts)({ config: loaded.config, logger, store });
    } catch (err) {
      throw new CliError(`cannot open the portal: ${(err as Error).message}`);
    }
    const service = new PortalService({
      config: loaded.config,
      logger,
      store,
      copies: parts.copies,
      notices: parts.notices,
      keys: parts.keys,
      fallback: new FallbackService(store),
      instance: `cli-${os.hostname()}`,
    });
    try {
      return await run(service, store, loaded);
    } catch (err) {
      throw asCliError(err);
    }
  });
}

const write = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};
const json = (value: unknown): void => write(JSON.stringify(value, null, 2));

export function describeEvent(e: PortalEventView): string {
  const detail = e.detail ? Object.entries(e.detail).map(([k, v]) => `${k}=${String(v)}`) : [];
  const who = [e.actor, e.ip ? `ip ${e.ip}` : undefined, e.uaHash ? `ua ${e.uaHash}` : undefined].filter(Boolean).join(' ');
  return `  ${String(e.seq).padStart(3)}  ${e.at}  ${e.type.padEnd(22)} ${who}${detail.length ? `  ${detail.join(' ')}` : ''}`;
}

/** `sealgate portal ...`: the built-in portal's copies, on the store directly (the relay may be running or not). */
export function registerPortalCommands(program: Command, options: PortalCliOptions = {}): void {
  const portal = program.command('portal').description('inspect and act on the built-in secure portal’s copies (metadata only, never content)');

  portal
    .command('list')
    .description('list portal items')
    .option('--json', 'print a JSON array for scripts')
    .option('--state <state>', `only items in this state (${PORTAL_STATES.join('|')})`)
    .action(async (opts: { json?: boolean; state?: string }, command: Command) => {
      const state = opts.state;
      if (state !== undefined && !isPortalState(state)) throw new CliError(`--state must be one of ${PORTAL_STATES.join(', ')}`, 2);
      const items = await withPortal(command, options, (service) => service.list(state === undefined ? {} : { state }));
      if (opts.json) return json(items);
      if (items.length === 0) return write('No portal items.');
      const rows = items.map((i) => [i.id, i.queueId, i.state, i.expiresAt, i.linkLive ? 'live' : '-']);
      write(formatTable(['ID', 'QUEUE ID', 'STATE', 'EXPIRES', 'LINK'], rows));
      write(`${items.length} item${items.length === 1 ? '' : 's'}`);
    });

  portal
    .command('show <id>')
    .description('one item: metadata and its audit trail (never content)')
    .option('--json', 'print JSON for scripts')
    .action(async (id: string, opts: { json?: boolean }, command: Command) => {
      const shown = await withPortal(command, options, (service) => service.show(id));
      if (opts.json) return json(shown);
      const i = shown.item;
      write(
        [
          `Item:        ${i.id}`,
          `Queue id:    ${i.queueId}`,
          `State:       ${i.state}${i.revokedFrom ? ` (revoked from ${i.revokedFrom})` : ''}${i.shredded ? ' (shredded)' : ''}`,
          `Link:        ${i.linkLive ? 'live' : 'none'}`,
          `Methods:     ${i.methods.join(', ')}`,
          `Size:        ${i.size}`,
          `Key id:      ${i.kid ?? '-'}`,
          `Created:     ${i.createdAt}`,
          `Expires:     ${i.expiresAt}`,
          ...(i.notifiedAt ? [`Notified:    ${i.notifiedAt}`] : []),
          ...(i.openedAt ? [`Opened:      ${i.openedAt}`] : []),
          ...(i.readAt ? [`Read:        ${i.readAt}`] : []),
          ...(i.noticeQueueId ? [`Last notice: ${i.noticeQueueId}`] : []),
          'Audit trail:',
          ...shown.events.map(describeEvent),
        ].join('\n'),
      );
    });

  const ops = [
    ['revoke', 'stop the link and sessions (reversible with restore)', 'revoked'],
    ['restore', 'undo a revoke', 'restored'],
    ['purge', 'crypto-shred the copy for good', 'purged'],
    ['resend', 'send a new link; the old one stops working', 'new link sent'],
    ['release', 'the recipient’s domain is compliant again: deliver by SMTP and shred the copy', 'released to SMTP delivery'],
  ] as const;
  for (const [op, description, done] of ops) {
    portal
      .command(`${op} <id>`)
      .description(description)
      .option('--json', 'print JSON for scripts')
      .action(async (id: string, opts: { json?: boolean }, command: Command) => {
        const result = await withPortal(command, options, async (service, store, loaded) => {
          const actor = cliActor();
          if (op === 'resend') {
            const { item, noticeQueueId } = await service.resend(id, actor);
            await recordAction(store, loaded, { action: 'portal-resend', id, noticeQueueId }, { queueId: item.queueId });
            return { id, action: op, noticeQueueId, item: toPortalItemView(item) };
          }
          if (op === 'release') {
            const { item, queueId } = await service.release(id, actor);
            await recordAction(store, loaded, { action: 'portal-release', id, newQueueId: queueId }, { queueId: item.queueId });
            return { id, action: op, queueId, item: toPortalItemView(item) };
          }
          const item = await service[op](id, actor);
          await recordAction(store, loaded, { action: `portal-${op}`, id }, { queueId: item.queueId });
          return { id, action: op, item: toPortalItemView(item) };
        });
        if (opts.json) return json(result);
        write(`${id}: ${done}${'queueId' in result ? ` as ${result.queueId}` : ''}${'noticeQueueId' in result ? ` (notice ${result.noticeQueueId})` : ''}`);
      });
  }

  portal
    .command('extend <id>')
    .description('move the expiry (at most 365 days after the item was created)')
    .option('--until <time>', 'new expiry, ISO 8601')
    .option('--by <duration>', 'later by this much: "7d", "12h" or seconds')
    .option('--json', 'print JSON for scripts')
    .action(async (id: string, opts: { until?: string; by?: string; json?: boolean }, command: Command) => {
      if ((opts.until === undefined) === (opts.by === undefined)) throw new CliError('give exactly one of --until or --by', 2);
      let change: ExtendBy;
      if (opts.until !== undefined) {
        const at = Date.parse(opts.until);
        if (!Number.isFinite(at)) throw new CliError('--until must be an ISO 8601 time', 2);
        change = { until: at };
      } else {
        const ms = parseAdminDuration(opts.by!);
        if (!ms) throw new CliError('--by must be a positive duration such as 7d', 2);
        change = { by: ms };
      }
      const item = await withPortal(command, options, async (service, store, loaded) => {
        const updated = await service.extend(id, change, cliActor());
        await recordAction(store, loaded, { action: 'portal-extend', id, expiresAt: new Date(updated.expiresAt).toISOString() }, { queueId: updated.queueId });
        return toPortalItemView(updated);
      });
      if (opts.json) return json({ id, action: 'extend', item });
      write(`${id}: expires ${item.expiresAt}`);
    });

  portal
    .command('rotate-key')
    .description('add a new key-encryption key to portal.keyFile and rewrap every data key under it; --retire also drops keys no item uses (run it once every relay has read the new file)')
    .option('--retire', 'drop key-encryption keys that no portal copy uses any more')
    .option('--json', 'print JSON for scripts')
    .action(async (opts: { json?: boolean; retire?: boolean }, command: Command) => {
      const result = await withPortal(command, options, async (service, store, loaded) => {
        const rotated = await service.rotateKey(loaded.config.portal.keyFile, { retire: opts.retire === true });
        await recordAction(store, loaded, { action: 'portal-rotate-key', id: rotated.kid, rewrapped: rotated.rewrapped, retired: rotated.retired });
        return rotated;
      });
      if (opts.json) return json(result);
      write(`new key ${result.kid}: ${result.rewrapped} data key${result.rewrapped === 1 ? '' : 's'} rewrapped; retired ${result.retired.length ? result.retired.join(', ') : 'none'}`);
    });
}

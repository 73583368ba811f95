import type { Config } from '../../config/schema';
import { FallbackService } from '../../fallback';
import type { Logger } from '../../log/logger';
import type { Store } from '../../store/types';
import type { CopiesPort, DomainCompliance, NoticeFinishedEvent, NoticePort } from './ports';
import { PortalService } from './service';
import { startPortal } from './timers';
import { openPortalParts, type PortalPartsFactory } from './wiring';

export interface PortalRuntime {
  service: PortalService;
  copies: CopiesPort;
  notices: NoticePort;
  /** For outbound's NoticeObserver: hands each final notice outcome to the service; failures are logged. */
  noticeObserver: { noticeFinished(e: NoticeFinishedEvent): void };
  close(): Promise<void>;
}

/**
 * What the relay calls when config.portal.enabled: loads the keyring (portal.keyFile), builds the copies, the
 * notice sender and the service over the open store, and starts the hand-over and sweep timers. The web
 * listener is started by the relay with `copies` and `notices` from here.
 */
export async function startPortalRuntime(deps: {
  config: Config;
  logger: Logger;
  store: Store;
  instance: string;
  parts?: PortalPartsFactory;
  now?: () => number;
  /** The domain check for portal.autoRelease (the relay wires outbound's checkDomain); absent: no auto-release. */
  compliance?: DomainCompliance;
}): Promise<PortalRuntime> {
  const { config, logger, store } = deps;
  const parts = await (deps.parts ?? openPortalParts)({ config, logger, store });
  const service = new PortalService({
    config,
    logger,
    store,
    copies: parts.copies,
    notices: parts.notices,
    keys: parts.keys,
    fallback: new FallbackService(store),
    instance: deps.instance,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.compliance ? { compliance: deps.compliance } : {}),
  });
  const timers = startPortal({ service, logger });
  return {
    service,
    copies: parts.copies,
    notices: parts.notices,
    noticeObserver: {
      noticeFinished(e) {
        service.noticeFinished(e).catch((err: unknown) => {
          logger.warn({ event: 'portal-notice-outcome-failed', queueId: e.queueId, itemId: e.itemId, err: (err as Error).message }, 'recording a notice outcome failed');
        });
      },
    },
    close: () => timers.close(),
  };
}

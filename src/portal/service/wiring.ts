import type { Config } from '../../config/schema';
import type { Logger } from '../../log/logger';
import { portalEventEvidence } from '../../evidence/recorder';
import type { Store } from '../../store/types';
import { PortalCopies } from '../copies';
import { addKeyEncryptionKey, loadOrCreateKeyring, retireKeyEncryptionKeys } from '../crypto';
import { createNoticeSender, type NoticeSender } from '../notices';
import type { CopiesPort, KeyFilePort, NoticePort } from './ports';

/** The portal parts a CLI command or the relay builds over an open store. */
export interface PortalParts {
  copies: CopiesPort;
  notices: NoticePort;
  /** Key rotation: the key-file operations and the copies rebuilt over a rotated key file. */
  keys: KeyFilePort & { reopen(keyFile: string): Promise<CopiesPort> };
}

export type PortalPartsFactory = (deps: { config: Config; logger: Logger; store: Store }) => Promise<PortalParts>;

/** The real parts: the concrete classes, which the web app needs beside the service. */
export type ProcessPortalParts = PortalParts & { copies: PortalCopies; notices: NoticeSender };

/** Builds the keyring, PortalCopies and NoticeSender for one process over an open store. */
export const openPortalParts = async ({ config, logger, store }: Parameters<PortalPartsFactory>[0]): Promise<ProcessPortalParts> => {
  const keyring = await loadOrCreateKeyring(config.portal.keyFile, logger);
  // Every trail entry is mirrored into the evidence log (one log of outcomes, admin actions and portal events).
  const evidence = portalEventEvidence(store);
  return {
    copies: new PortalCopies(store, keyring, Date.now, { evidence }),
    notices: createNoticeSender({ config, store, logger }),
    keys: {
      addKeyEncryptionKey,
      retireKeyEncryptionKeys,
      reopen: async (file) => new PortalCopies(store, await loadOrCreateKeyring(file, logger), Date.now, { evidence }),
    },
  };
};

import { promises as fs } from 'node:fs';
import type { Config } from '../../config/schema';

/**
 * The portal's certificate: portal.cert and portal.key when both are set, else the inbound one (configured or
 * the development certificate), so `npm start` serves the portal without any setup.
 */
export async function portalCertificate(portal: Config['portal'], inbound: { cert: string; key: string }): Promise<{ cert: string; key: string }> {
  if (portal.cert === null && portal.key === null) return { cert: inbound.cert, key: inbound.key };
  if (portal.cert === null || portal.key === null) throw new Error('portal.cert and portal.key go together: set both, or neither to use the inbound certificate');
  const read = async (file: string, key: 'cert' | 'key'): Promise<string> => {
    try {
      return await fs.readFile(file, 'utf8');
    } catch (err) {
      throw new Error(`cannot read portal.${key} at ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  return { cert: await read(portal.cert, 'cert'), key: await read(portal.key, 'key') };
}

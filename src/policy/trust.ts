import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/**
 * The CA list for outbound TLS (MX hosts, MTA-STS fetches). Undefined means "Node's default",
 * which already includes NODE_EXTRA_CA_CERTS. Passing `ca` replaces that default, so when an extra
 * file is configured the list is rebuilt: Node's roots + NODE_EXTRA_CA_CERTS + the file.
 */
export function buildTrustStore(extraCaFile: string | null, env: Record<string, string | undefined> = process.env): string[] | undefined {
  if (!extraCaFile) return undefined;
  const extra = [readPem(extraCaFile, 'extra CA file')];
  if (env.NODE_EXTRA_CA_CERTS) extra.push(readPem(env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS'));
  return [...rootCertificates, ...extra];
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

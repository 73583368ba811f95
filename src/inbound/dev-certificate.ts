import { randomBytes, X509Certificate, createPrivateKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';

/**
 * The inbound TLS certificate: the configured one, or a generated self-signed development
 * certificate stored beside the queue (`<queue.path>/dev-tls/`) and reused on later starts.
 */

export interface InboundCertificate {
  key: string;
  cert: string;
  /** 'configured' or 'development' (self-signed, generated here). */
  source: 'configured' | 'development';
}

export class CertificateError extends Error {
  override name = 'CertificateError';
}

const DEV_DIR = 'dev-tls';
const VALID_DAYS = 365;
/** A stored development certificate this close to expiry is replaced. */
const RENEW_BEFORE_MS = 7 * 86_400_000;

export async function loadOrCreateInboundCertificate(config: Config, logger: Logger): Promise<InboundCertificate> {
  if (config.tls.cert !== null && config.tls.key !== null) return loadConfigured(config.tls.cert, config.tls.key);

  const dir = path.join(config.queue.path, DEV_DIR);
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  let pair = await readReusable(certFile, keyFile, config.hostname);
  if (!pair) {
    pair = await generateDevelopmentCertificate(config.hostname);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await writeAtomically(keyFile, pair.key, 0o600);
    await writeAtomically(certFile, pair.cert, 0o644);
    logger.info({ event: 'dev-certificate-created', cert: certFile }, 'generated a self-signed development certificate');
  }
  logger.warn({ event: 'dev-certificate', cert: certFile, hostname: config.hostname }, 'inbound TLS uses a self-signed DEVELOPMENT certificate: set tls.cert and tls.key for production');
  return { ...pair, source: 'development' };
}

async function loadConfigured(certFile: string, keyFile: string): Promise<InboundCertificate> {
  const read = async (file: string, what: string): Promise<string> => {
    try {
      return await fs.readFile(file, 'utf8');
    } catch (err) {
      throw new CertificateError(`cannot read the TLS ${what} (tls.${what === 'certificate' ? 'cert' : 'key'}) at ${file}: ${(err as Error).message}`);
    }
  };
  const cert = await read(certFile, 'certificate');
  const key = await read(keyFile, 'key');
  try {
    new X509Certificate(cert);
  } catch (err) {
    throw new CertificateError(`tls.cert ${certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    createPrivateKey(key);
  } catch (err) {
    throw new CertificateError(`tls.key ${keyFile} is not a readable PEM private key (encrypted keys are not supported): ${(err as Error).message}`);
  }
  return { cert, key, source: 'configured' };
}

/** The stored pair, if it exists, parses, names this hostname and is not about to expire. */
async function readReusable(certFile: string, keyFile: string, hostname: string): Promise<{ key: string; cert: string } | undefined> {
  try {
    const [cert, key] = await Promise.all([fs.readFile(certFile, 'utf8'), fs.readFile(keyFile, 'utf8')]);
    const x509 = new X509Certificate(cert);
    createPrivateKey(key);
    if (x509.checkHost(hostname) === undefined) return undefined;
    if (new Date(x509.validTo).getTime() - Date.now() < RENEW_BEFORE_MS) return undefined;
    if (!x509.checkPrivateKey(createPrivateKey(key))) return undefined;
    return { cert, key };
  } catch {
    return undefined;
  }
}

export async function generateDevelopmentCertificate(hostname: string): Promise<{ key: string; cert: string }> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + VALID_DAYS * 86_400_000);
  const altNames = [{ type: 2 as const, value: hostname }, ...(hostname === 'localhost' ? [] : [{ type: 2 as const, value: 'localhost' }]), { type: 7 as const, ip: '127.0.0.1' }];
  // Loaded on demand: selfsigned and its crypto libraries cost ~7 MB of RSS a configured relay never needs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps the module unloaded until needed
  const { generate } = require('selfsigned') as typeof import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

async function writeAtomically(file: string, content: string, mode: number): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await fs.open(tmp, 'wx', mode);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
}

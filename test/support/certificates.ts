import { generate } from 'selfsigned';

export interface TestCertificate {
  key: string;
  cert: string;
}

const cache = new Map<string, Promise<TestCertificate>>();

/** A self-signed certificate for `name` (cached per process: key generation is the slow part). */
export function selfSignedCertificate(name = 'localhost', keyType: 'ec' | 'rsa' = 'ec', keySize = 2048): Promise<TestCertificate> {
  const cacheKey = `${name}/${keyType}/${keySize}`;
  let pending = cache.get(cacheKey);
  if (!pending) {
    pending = generate([{ name: 'commonName', value: name }], {
      keyType,
      keySize,
      algorithm: 'sha256',
      extensions: [
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: name },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    }).then((pems) => ({ key: pems.private, cert: pems.cert }));
    cache.set(cacheKey, pending);
  }
  return pending;
}

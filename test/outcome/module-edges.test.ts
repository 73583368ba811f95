import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The edges around the outcome rule and the SMTP client (docs/architecture: dependencies point one
 * way): policy never reaches the SMTP client, delivery or admin; the outcome rule depends on nothing
 * that does I/O; the SMTP client may use policy (profile, candidates) and the outcome vocabulary.
 */

const SRC = path.resolve(__dirname, '..', '..', 'src');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? filesUnder(path.join(dir, entry.name)) : entry.name.endsWith('.ts') ? [path.join(dir, entry.name)] : []));
}

/** Top-level src modules (or packages) one module's files import. */
function importsOf(module: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of filesUnder(path.join(SRC, module))) {
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/g)) {
      const target = spec!.startsWith('.') ? path.relative(SRC, path.resolve(path.dirname(file), spec!)).split(path.sep)[0]! : `package:${spec!.split('/')[0]}`;
      found.set(target, [...(found.get(target) ?? []), path.relative(SRC, file)]);
    }
  }
  return found;
}

const allowed: Record<string, string[]> = {
  outcome: ['outcome', 'store'],
  // plus Node's own modules (DNS, HTTPS for MTA-STS, TLS for the profile)
  policy: ['policy', 'config', 'log', 'store', 'package:lru-cache'],
  'smtp-client': ['smtp-client', 'policy', 'outcome', 'package:node:tls', 'package:node:stream', 'package:nodemailer'],
};

describe('module edges', () => {
  it.each(Object.keys(allowed))('%s imports only what it may', (module) => {
    const wrong = [...importsOf(module)].filter(([target]) => !allowed[module]!.includes(target) && !(module === 'policy' && target.startsWith('package:node:')));
    expect(Object.fromEntries(wrong)).toEqual({});
  });

  it('the outcome rule has no package imports at all (no I/O)', () => {
    expect([...importsOf('outcome').keys()].filter((t) => t.startsWith('package:'))).toEqual([]);
  });
});

import { domainToASCII } from 'node:url';

/**
 * Envelope address normalisation. Relay and sender decisions are made on the result only, and
 * anything a relay must not route (source routes, %-hack, bang paths, address literals) is refused
 * here, because smtp-server passes most of those through.
 */

export type AddressProblem = 'empty' | 'source-route' | 'percent-hack' | 'bang-path' | 'address-literal' | 'missing-domain' | 'bad-local-part' | 'bad-domain' | 'too-long';

export type NormalizedAddress = { ok: true; address: string; local: string; domain: string } | { ok: false; problem: AddressProblem; message: string };

const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;
const MAX_PATH = 254;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

const MESSAGES: Record<AddressProblem, string> = {
  empty: 'An empty address is not allowed here',
  'source-route': 'Source routes are not accepted',
  'percent-hack': 'The %-hack is not accepted',
  'bang-path': 'Bang paths are not accepted',
  'address-literal': 'Address literals are not accepted',
  'missing-domain': 'The address must have a domain',
  'bad-local-part': 'Invalid local part',
  'bad-domain': 'Invalid domain',
  'too-long': 'Address too long',
};

function refuse(problem: AddressProblem): NormalizedAddress {
  return { ok: false, problem, message: MESSAGES[problem] };
}

/** True when an address as written in MAIL/RCPT (inside the angle brackets) starts with a source route. */
export function hasSourceRoute(commandLine: string): boolean {
  return /^[A-Za-z]+\s+[A-Za-z]+\s*:\s*<\s*@/.test(commandLine);
}

/** Normalises an envelope address: lower-cased ASCII domain, local part as given. `''` is only valid as a sender. */
export function normalizeAddress(raw: string, role: 'sender' | 'recipient'): NormalizedAddress {
  const input = raw.trim();
  if (input === '') return role === 'sender' ? { ok: true, address: '', local: '', domain: '' } : refuse('empty');
  if (input.startsWith('@') || /^@[^:]*:/.test(input)) return refuse('source-route');
  if (input.length > MAX_PATH) return refuse('too-long');

  const at = input.lastIndexOf('@');
  if (at <= 0 || at === input.length - 1) return refuse(at === 0 ? 'bad-local-part' : 'missing-domain');
  const local = input.slice(0, at);
  const rawDomain = input.slice(at + 1);

  const quoted = local.length >= 2 && local.startsWith('"') && local.endsWith('"');
  if (local.includes('%')) return refuse('percent-hack');
  if (local.includes('!')) return refuse('bang-path');
  if (!quoted && (local.includes('@') || local.includes(':') || local.includes(','))) return refuse('source-route');
  if (local.length > MAX_LOCAL) return refuse('too-long');
  if (!quoted && (local.startsWith('.') || local.endsWith('.') || local.includes('..') || /[\s<>()[\]\\;"]/.test(local))) {
    return refuse('bad-local-part');
  }

  if (rawDomain.startsWith('[')) return refuse('address-literal');
  if (rawDomain.length > MAX_DOMAIN) return refuse('too-long');
  const domain = domainToASCII(rawDomain.toLowerCase());
  if (domain === '' || domain.length > MAX_DOMAIN) return refuse('bad-domain');
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((label) => LABEL.test(label))) return refuse('bad-domain');
  if (/^\d+$/.test(labels[labels.length - 1]!)) return refuse('address-literal');

  const address = `${local}@${domain}`;
  if (address.length > MAX_PATH) return refuse('too-long');
  return { ok: true, address, local, domain };
}

/** MAIL and RCPT parameters Sealgate understands; anything else gets 555 (smtp-server lets unknown ones through). */
export const MAIL_PARAMETERS: ReadonlySet<string> = new Set(['SIZE', 'BODY', 'SMTPUTF8', 'REQUIRETLS', 'RET', 'ENVID', 'AUTH']);
export const RCPT_PARAMETERS: ReadonlySet<string> = new Set(['NOTIFY', 'ORCPT']);

/** Returns the first parameter not in `allowed`, or undefined when all are known. */
export function unknownParameter(args: Record<string, string | true> | false | undefined, allowed: ReadonlySet<string>): string | undefined {
  if (!args) return undefined;
  return Object.keys(args).find((key) => !allowed.has(key.toUpperCase()));
}

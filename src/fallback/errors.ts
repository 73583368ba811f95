import { InvalidStateError, NotFoundError, isStoreError, type StoreError } from '../store/errors';

/*
 * The fallback module's errors are store errors with a code, so every caller (admin API: 404 / 409,
 * CLI: exit 6 / 1) maps them in one place and never reads message text:
 *   'not-found'    no such item (or its message body is gone)
 *   'handed-over'  the item was acknowledged by a portal: it can no longer be released to delivery
 *   'lease-lost'   acknowledging an item the caller does not hold a claim on
 */
export type FallbackErrorCode = 'not-found' | 'handed-over' | 'lease-lost';

export function itemNotFound(id: string): NotFoundError {
  return new NotFoundError(`no fallback item ${id}`);
}

export function alreadyHandedOver(id: string): InvalidStateError {
  return new InvalidStateError(`fallback item ${id} was already handed over to the portal; it cannot be released`, 'handed-over');
}

/** True when `err` is one of the fallback module's errors with one of `codes` (any of them when none given). */
export function isFallbackError(err: unknown, ...codes: FallbackErrorCode[]): err is StoreError & { code: FallbackErrorCode } {
  const all: FallbackErrorCode[] = ['not-found', 'handed-over', 'lease-lost'];
  return isStoreError(err, ...(codes.length > 0 ? codes : all));
}

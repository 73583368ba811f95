/**
 * Typed store errors. Callers decide by `code` (or by class), never by message text; messages are for people.
 */

export type StoreErrorCode =
  /** No message, job or fallback item with that id. */
  | 'not-found'
  /** A lease or claim is no longer held by the caller (expired and taken by another, or never held). */
  | 'lease-lost'
  /** A fallback item was already acknowledged by a portal: it can no longer be released to delivery. */
  | 'handed-over'
  /** The action is not possible in the current state (e.g. nothing held to release). */
  | 'wrong-state'
  /** A body stream failed or was aborted, so nothing was stored. */
  | 'enqueue-aborted'
  /** The backend cannot be reached (Redis down); the operation may succeed later. */
  | 'unavailable'
  /** A record kept changing under concurrent writers and the store gave up. */
  | 'contention'
  /** The backend answered something this code does not understand (a bug, not a state). */
  | 'internal'
  /** A stored record or body is damaged (fails its schema, size or checksum); the store set it aside. */
  | 'damaged';

export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** True when `err` is a StoreError with one of the given codes. */
export function isStoreError(err: unknown, ...codes: StoreErrorCode[]): err is StoreError {
  return err instanceof StoreError && (codes.length === 0 || codes.includes(err.code));
}

/** Thrown for an operation on an id the store does not hold. */
export class NotFoundError extends StoreError {
  override name = 'NotFoundError';
  constructor(message: string, options?: ErrorOptions) {
    super('not-found', message, options);
  }
}

/** Thrown when a lease or claim is no longer held by the caller (expired and taken by another). */
export class LeaseLostError extends StoreError {
  override name = 'LeaseLostError';
  constructor(message: string, options?: ErrorOptions) {
    super('lease-lost', message, options);
  }
}

/**
 * The action is not possible in the item's current state: code 'wrong-state', or 'handed-over' for a fallback
 * item a portal already acknowledged. The admin API answers 409, the CLI exits 1.
 */
export class InvalidStateError extends StoreError {
  override name = 'InvalidStateError';
  constructor(message: string, code: 'wrong-state' | 'handed-over' = 'wrong-state', options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** Thrown when a body stream is aborted or too large, so nothing was stored. */
export class EnqueueAbortedError extends StoreError {
  override name = 'EnqueueAbortedError';
  constructor(message: string, options?: ErrorOptions) {
    super('enqueue-aborted', message, options);
  }
}

/** Thrown while the store's backend cannot be reached (Redis down); the operation may succeed later. */
export class StoreUnavailableError extends StoreError {
  override name = 'StoreUnavailableError';
  constructor(message: string, options?: ErrorOptions) {
    super('unavailable', message, options);
  }
}

/** A stored record or body failed its check; the entry has been (or is being) quarantined. Never retried. */
export class DamagedEntryError extends StoreError {
  override name = 'DamagedEntryError';
  constructor(message: string, options?: ErrorOptions) {
    super('damaged', message, options);
  }
}

export function handedOver(id: string): InvalidStateError {
  return new InvalidStateError(`fallback item ${id} was already handed over; it cannot be released`, 'handed-over');
}

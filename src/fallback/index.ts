export { alreadyHandedOver, isFallbackError, itemNotFound, type FallbackErrorCode } from './errors';
export { FALLBACK_STATES, FallbackService, isFallbackState, type FallbackBackend, type FallbackPage } from './service';

export type { CopiesPort, DomainCompliance, FallbackPort, KeyFilePort, NoticeFinishedEvent, NoticePort, ServiceNotice } from './ports';
export {
  FINAL_STATES,
  LIVE_STATES,
  MAX_LIFETIME,
  MIN_LIFETIME,
  PORTAL_STATES,
  PortalService,
  isPortalState,
  portalBaseUrl,
  portalLink,
  settingsFor,
  toPortalEventView,
  toPortalItemView,
  type ExtendBy,
  type PortalEventView,
  type PortalItemView,
  type PortalServiceDeps,
  type PortalServiceStore,
  type PortalSettings,
} from './service';
export { startPortal, type PortalTimerOptions } from './timers';
export { startPortalRuntime, type PortalRuntime } from './start';
export { openPortalParts, type PortalParts, type PortalPartsFactory } from './wiring';

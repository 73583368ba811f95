export { buildPortalApp, COOKIES, MESSAGE_FRAME_CSP } from './app';
export { portalTlsOptions, startPortalServer, type PortalServer } from './server';
export type { NoticePort, PortalCachePort, PortalItemsPort, PortalWebDeps, PortalWebNotice } from './deps';
export { portalCertificate } from './certificate';

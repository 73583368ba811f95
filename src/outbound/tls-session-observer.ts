import type { TlsSessionFacts } from '../evidence/tls-session';

/** How the delivery engine reports TLS decisions (relay.ts wires it to TLS-RPT counting when tlsrpt.enabled). Must not throw or block. */
export interface TlsSessionObserver {
  tlsSessions(events: TlsSessionFacts[]): void;
}

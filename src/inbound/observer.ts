/**
 * What inbound reports about its traffic (metrics). Inbound declares it and calls it; relay.ts
 * wires an implementation (Prometheus, in admin). Reason codes are the ones in the log lines.
 */
export interface InboundObserver {
  /** A connection refused at connect or after the TLS handshake (abuse, connection caps, TLS outside the profile). */
  connectionRefused(reason: string): void;
  /** A command refused: MAIL/RCPT rules, failed AUTH, or a protocol error smtp-server answered itself. */
  commandRefused(reason: string): void;
  /** A message refused after DATA (size, line length, bare newlines, store failure, client gone). */
  messageRefused(reason: string): void;
  /** A message durably queued (`250` after DATA). */
  messageAccepted(listener: string): void;
  /** A TLS session established (STARTTLS or implicit TLS), compliant or not. */
  tlsEstablished(facts: { protocol: string; cipher: string }): void;
}

export const noopInboundObserver: InboundObserver = {
  connectionRefused: () => undefined,
  commandRefused: () => undefined,
  messageRefused: () => undefined,
  messageAccepted: () => undefined,
  tlsEstablished: () => undefined,
};

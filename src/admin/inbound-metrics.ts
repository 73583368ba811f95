import type { InboundObserver } from '../inbound/observer';
import type { Metrics } from './metrics';

/** Counts inbound traffic in the Prometheus instruments: every refusal under messages_refused by its reason code. */
export function inboundMetrics(metrics: Pick<Metrics, 'messagesAccepted' | 'messagesRefused' | 'inboundTls'>): InboundObserver {
  return {
    connectionRefused: (reason) => metrics.messagesRefused.inc({ reason }),
    commandRefused: (reason) => metrics.messagesRefused.inc({ reason }),
    messageRefused: (reason) => metrics.messagesRefused.inc({ reason }),
    messageAccepted: (listener) => metrics.messagesAccepted.inc({ listener }),
    tlsEstablished: (facts) => metrics.inboundTls.inc(facts),
  };
}

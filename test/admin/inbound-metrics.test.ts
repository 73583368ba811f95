import { inboundMetrics } from '../../src/admin/inbound-metrics';
import { createMetrics } from '../../src/admin/metrics';
import { sample } from '../support/prometheus';

describe('inbound observer on the Prometheus instruments', () => {
  test('every kind of refusal counts under sealgate_messages_refused_total by reason; accepted and TLS have their own counters', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const observer = inboundMetrics(metrics);
    observer.connectionRefused('abuse');
    observer.commandRefused('auth-required');
    observer.commandRefused('auth-required');
    observer.messageRefused('message-too-big');
    observer.messageAccepted('smarthost');
    observer.tlsEstablished({ protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
    const text = (await metrics.render()).body;
    expect(sample(text, 'sealgate_messages_refused_total', { reason: 'abuse' })).toBe(1);
    expect(sample(text, 'sealgate_messages_refused_total', { reason: 'auth-required' })).toBe(2);
    expect(sample(text, 'sealgate_messages_refused_total', { reason: 'message-too-big' })).toBe(1);
    expect(sample(text, 'sealgate_messages_accepted_total', { listener: 'smarthost' })).toBe(1);
    expect(sample(text, 'sealgate_inbound_tls_sessions_total', { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' })).toBe(1);
  });
});

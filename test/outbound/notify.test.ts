import {
  advertisesDsn,
  deferralStatus,
  delayWarningDue,
  dsnSuppressedFor,
  notifyOf,
  relayedNoticeDue,
  retryAtForWarning,
  successStatus,
  wantsDelayNotice,
  wantsFailureNotice,
  wantsSuccessNotice,
} from '../../src/outbound/notify';

/** Which DSN each recipient is due per its RFC 3461 NOTIFY, and when the delay warning is owed. */

const HOUR = 3_600_000;
const message = (overrides: { from?: string; notice?: boolean; receivedAt?: number } = {}) => ({
  from: overrides.from ?? 'clinic@sender.test',
  params: overrides.notice ? { notice: { kind: 'portal-link' } } : {},
  receivedAt: overrides.receivedAt ?? 0,
});

describe('NOTIFY (RFC 3461)', () => {
  test('no NOTIFY means FAILURE,DELAY; keywords are case-insensitive', () => {
    expect([...notifyOf({})]).toEqual(['FAILURE', 'DELAY']);
    expect([...notifyOf({ notify: [] })]).toEqual(['FAILURE', 'DELAY']);
    expect([...notifyOf({ notify: ['success', ' Delay'] })]).toEqual(['SUCCESS', 'DELAY']);
  });

  test.each([
    [undefined, { failure: true, delay: true, success: false }],
    [['NEVER'], { failure: false, delay: false, success: false }],
    [['SUCCESS'], { failure: false, delay: false, success: true }],
    [['FAILURE'], { failure: true, delay: false, success: false }],
    [['DELAY'], { failure: false, delay: true, success: false }],
    [['SUCCESS', 'FAILURE', 'DELAY'], { failure: true, delay: true, success: true }],
    [['success', 'failure'], { failure: true, delay: false, success: true }],
  ])('NOTIFY=%j', (notify, expected) => {
    const recipient = notify ? { notify } : {};
    expect({ failure: wantsFailureNotice(recipient), delay: wantsDelayNotice(recipient), success: wantsSuccessNotice(recipient) }).toEqual(expected);
  });

  test('no DSN of any kind for the null sender or a portal notice', () => {
    expect(dsnSuppressedFor(message())).toBeNull();
    expect(dsnSuppressedFor(message({ from: '' }))).toBe('null-sender');
    expect(dsnSuppressedFor(message({ notice: true }))).toBe('portal-notice');
    expect(dsnSuppressedFor({ from: 'reports@relay.test', params: { compliantOnly: { kind: 'report' } } })).toBe('relay-mail');
  });
});

describe('delay warning', () => {
  test('due once the threshold has passed, not before', () => {
    expect(delayWarningDue(message(), {}, 4 * HOUR, 4 * HOUR - 1)).toBe(false);
    expect(delayWarningDue(message(), {}, 4 * HOUR, 4 * HOUR)).toBe(true);
    expect(delayWarningDue(message({ receivedAt: HOUR }), {}, 4 * HOUR, 5 * HOUR + 1)).toBe(true);
  });

  test('never twice: a recipient already warned is not due again', () => {
    expect(delayWarningDue(message(), { delayWarnedAt: 4 * HOUR }, 4 * HOUR, 10 * HOUR)).toBe(false);
  });

  test('off when delivery.delayWarning is null or 0', () => {
    expect(delayWarningDue(message(), {}, null, 100 * HOUR)).toBe(false);
    expect(delayWarningDue(message(), {}, 0, 100 * HOUR)).toBe(false);
  });

  test('never for the null sender, a portal notice, NOTIFY=NEVER or a NOTIFY without DELAY', () => {
    expect(delayWarningDue(message({ from: '' }), {}, HOUR, 2 * HOUR)).toBe(false);
    expect(delayWarningDue(message({ notice: true }), {}, HOUR, 2 * HOUR)).toBe(false);
    expect(delayWarningDue(message(), { notify: ['NEVER'] }, HOUR, 2 * HOUR)).toBe(false);
    expect(delayWarningDue(message(), { notify: ['FAILURE', 'SUCCESS'] }, HOUR, 2 * HOUR)).toBe(false);
    expect(delayWarningDue(message(), { notify: ['DELAY'] }, HOUR, 2 * HOUR)).toBe(true);
  });

  test('the next attempt is brought forward to the warning time when the schedule would pass it', () => {
    // Received at 0, warning at 4 h, now 3.5 h, next retry per schedule at 5.5 h: try again at 4 h.
    expect(retryAtForWarning(5.5 * HOUR, message(), [{}], 4 * HOUR, 3.5 * HOUR)).toBe(4 * HOUR);
    // The schedule reaches it first: unchanged.
    expect(retryAtForWarning(3.75 * HOUR, message(), [{}], 4 * HOUR, 3.5 * HOUR)).toBe(3.75 * HOUR);
  });

  test('no earlier attempt when nothing is owed: off, past the threshold, already warned, NOTIFY without DELAY, null sender', () => {
    const retryAt = 5.5 * HOUR;
    expect(retryAtForWarning(retryAt, message(), [{}], null, 3.5 * HOUR)).toBe(retryAt);
    expect(retryAtForWarning(retryAt, message(), [{}], 4 * HOUR, 4 * HOUR)).toBe(retryAt);
    expect(retryAtForWarning(retryAt, message(), [{ delayWarnedAt: 1 }], 4 * HOUR, 3.5 * HOUR)).toBe(retryAt);
    expect(retryAtForWarning(retryAt, message(), [{ notify: ['FAILURE'] }], 4 * HOUR, 3.5 * HOUR)).toBe(retryAt);
    expect(retryAtForWarning(retryAt, message({ from: '' }), [{}], 4 * HOUR, 3.5 * HOUR)).toBe(retryAt);
    expect(retryAtForWarning(retryAt, message(), [], 4 * HOUR, 3.5 * HOUR)).toBe(retryAt);
  });

  test('the status is the deferral reply’s enhanced 4.x.x code, else 4.0.0', () => {
    expect(deferralStatus('450 4.2.1 mailbox busy')).toBe('4.2.1');
    expect(deferralStatus('451-4.3.0 first line\n451 4.3.0 second')).toBe('4.3.0');
    expect(deferralStatus('421 service not available')).toBe('4.0.0');
    expect(deferralStatus('550 5.1.1 no such user')).toBe('4.0.0');
    expect(deferralStatus(null)).toBe('4.0.0');
  });
});

describe('success (relayed) DSN', () => {
  test('only for NOTIFY with SUCCESS', () => {
    expect(relayedNoticeDue({}, false, false)).toBe(false);
    expect(relayedNoticeDue({ notify: ['FAILURE', 'DELAY'] }, false, false)).toBe(false);
    expect(relayedNoticeDue({ notify: ['NEVER'] }, false, false)).toBe(false);
    expect(relayedNoticeDue({ notify: ['SUCCESS'] }, false, false)).toBe(true);
  });

  test('none when the next hop offers DSN and was handed the NOTIFY: it reports from then on', () => {
    expect(relayedNoticeDue({ notify: ['SUCCESS'] }, true, true)).toBe(false);
    expect(relayedNoticeDue({ notify: ['SUCCESS'] }, true, false)).toBe(true);
    expect(relayedNoticeDue({ notify: ['SUCCESS'] }, false, true)).toBe(true);
  });

  test('DSN in the EHLO keywords; status from a 2.x.x reply', () => {
    expect(advertisesDsn(['PIPELINING', 'DSN', 'SIZE 1000'])).toBe(true);
    expect(advertisesDsn(['dsn'])).toBe(true);
    expect(advertisesDsn(['PIPELINING', 'DSNX', 'X-DSN'])).toBe(false);
    expect(successStatus('250 2.6.0 queued as X')).toBe('2.6.0');
    expect(successStatus('250 ok')).toBe('2.0.0');
  });
});

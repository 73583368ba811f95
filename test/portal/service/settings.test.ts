import { parseConfig } from '../../../src/config/load';
import { settingsFor } from '../../../src/portal/service';

/** settingsFor with a message's own choices (params.portal): the message chooses only within what the admin allows. */

const DAY = 86_400_000;
const HASH = 'scrypt$16384$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=';

function portal(settings: Record<string, unknown> = {}) {
  return parseConfig({ listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], portal: { publicUrl: 'https://portal.clinic.test', ...settings } }, {}, '/tmp').portal;
}

const BOTH = portal({ methods: ['email-otp', 'secret'], expiry: '30d' });

describe('settingsFor with per-message choices', () => {
  test('without choices it gives the admin settings unchanged; {} (a message without choices) keeps them too', () => {
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test')).toEqual({ notify: true, expiry: 30 * DAY, methods: ['email-otp', 'secret'] });
    // With choices, 'secret' without a passphrase hash cannot work and is left out.
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', {})).toEqual({ notify: true, expiry: 30 * DAY, methods: ['email-otp'] });
  });

  test('notify: the message may turn notices off, never on', () => {
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', { notify: false }).notify).toBe(false);
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', { notify: true }).notify).toBe(true);
    const quiet = portal({ overrides: { 'weak.test': { notify: false } } });
    expect(settingsFor(quiet, 'p@weak.test', 's@clinic.test', { notify: true }).notify).toBe(false);
    expect(settingsFor(quiet, 'p@other.test', 's@clinic.test', { notify: true }).notify).toBe(true);
  });

  test("expiry: capped at the admin's expiry for that recipient and sender", () => {
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', { expiry: 7 * DAY }).expiry).toBe(7 * DAY);
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', { expiry: 90 * DAY }).expiry).toBe(30 * DAY);
    const short = portal({ overrides: { 's@clinic.test': { expiry: '3d' } } });
    expect(settingsFor(short, 'p@weak.test', 'S@clinic.test', { expiry: 10 * DAY }).expiry).toBe(3 * DAY);
    expect(settingsFor(short, 'p@weak.test', 'other@clinic.test', { expiry: 10 * DAY }).expiry).toBe(10 * DAY);
  });

  test("methods: intersected with the admin's; an empty intersection keeps the admin's", () => {
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', { methods: ['secret'], secretHash: HASH })).toEqual({ notify: true, expiry: 30 * DAY, methods: ['secret'], secretHash: HASH });
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', { methods: ['email-otp'], secretHash: HASH })).toEqual({ notify: true, expiry: 30 * DAY, methods: ['email-otp'] });
    const otpOnly = portal({ methods: ['email-otp'] });
    // The admin does not allow 'secret': the message cannot add it, and its passphrase hash is not used.
    expect(settingsFor(otpOnly, 'p@weak.test', 's@clinic.test', { methods: ['secret'], secretHash: HASH })).toEqual({ notify: true, expiry: otpOnly.expiry, methods: ['email-otp'] });
  });

  test("secret: the item's secretHash comes from the message, only when 'secret' is among the resulting methods", () => {
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', { secretHash: HASH })).toEqual({ notify: true, expiry: 30 * DAY, methods: ['email-otp', 'secret'], secretHash: HASH });
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', { methods: ['email-otp'], secretHash: HASH }).secretHash).toBeUndefined();
  });

  test("only 'secret' but no passphrase: the admin's other methods, else email-otp, so the recipient can still get the message", () => {
    expect(settingsFor(BOTH, 'p@weak.test', 's@clinic.test', { methods: ['secret'] })).toEqual({ notify: true, expiry: 30 * DAY, methods: ['email-otp'] });
    const secretOnly = portal({ methods: ['secret'] });
    expect(settingsFor(secretOnly, 'p@weak.test', 's@clinic.test', {})).toEqual({ notify: true, expiry: secretOnly.expiry, methods: ['email-otp'] });
    expect(settingsFor(secretOnly, 'p@weak.test', 's@clinic.test', { secretHash: HASH })).toEqual({ notify: true, expiry: secretOnly.expiry, methods: ['secret'], secretHash: HASH });
  });

  test('all choices at once within an override', () => {
    const config = portal({ methods: ['email-otp', 'secret'], overrides: { 'weak.test': { expiry: '14d' } } });
    expect(settingsFor(config, 'p@Weak.test', 's@clinic.test', { notify: false, expiry: 60 * DAY, methods: ['secret', 'email-otp'], secretHash: HASH })).toEqual({
      notify: false,
      expiry: 14 * DAY,
      methods: ['email-otp', 'secret'],
      secretHash: HASH,
    });
  });
});

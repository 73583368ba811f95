import { parseStsRecord, selectStsRecord } from '../../src/policy/mta-sts/record';

describe('MTA-STS TXT record (RFC 8461 §3.1)', () => {
  it.each([
    ['v=STSv1; id=20160831085700Z;', '20160831085700Z'], // the RFC's example
    ['v=STSv1; \t id=20160831085700Z  \t;', '20160831085700Z'],
    ['v=STSv1;id=a', 'a'],
    ['v=STSv1; id=a; more=a; ext=2', 'a'],
    ['v=STSv1; id=01234567890123456789012345678901', '01234567890123456789012345678901'], // 32 characters
  ])('accepts %j', (text, id) => {
    const result = parseStsRecord(text);
    expect(result).toEqual({ ok: true, record: expect.objectContaining({ id }) });
  });

  it('keeps extension fields for evidence', () => {
    expect(parseStsRecord('v=STSv1; id=a; more=a; ext=2')).toEqual({ ok: true, record: { id: 'a', extensions: { more: 'a', ext: '2' } } });
  });

  it.each([
    ['v=STSv0', /start/],
    ['v=STSv10; id=a', /version/],
    ['v=STSv2; id=a', /start/],
    ['v=STSv1', /no id/],
    ['v=STSv1;', /no id/],
    ['v=STSv1; ext=1', /no id/],
    ['v=STSv1; id=', /id/],
    ['v=STSv1; id=012345678901234567890123456789012', /1 to 32/], // 33 characters
    ['v=STSv1; id=test-123', /1 to 32/],
    ['v=STSv1; id=a; more=', /value/],
    ['v=STSv1; id=a; a12345678901234567890123456789012=1', /name/],
    ['v=STSv1; id=a; 1%=a', /name/],
    ['v=STSv1; id=a; test==', /value/],
    ['v=STSv1; id=a;;', /malformed/],
    ['v=STSv1; id=a; id=b', /more than one id/],
    [' v=STSv1; id=a', /start/],
    ['id=a; v=STSv1', /start/],
  ])('rejects %j with a reason', (text, reason) => {
    const result = parseStsRecord(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  describe('selecting among several TXT records', () => {
    it('ignores records that are not MTA-STS', () => {
      expect(selectStsRecord(['v=spf1 -all', 'v=STSv1; id=abc', 'hello'])).toEqual({ ok: true, record: { id: 'abc', extensions: {} } });
    });
    it('means no policy when two records start with v=STSv1', () => {
      const result = selectStsRecord(['v=STSv1; id=a', 'v=STSv1; id=b']);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toMatch(/2 TXT records/);
    });
    it('means no policy when there is none', () => {
      expect(selectStsRecord([]).ok).toBe(false);
      expect(selectStsRecord(['v=STSv10; id=a']).ok).toBe(false);
    });
    it('means no policy when the one record is invalid', () => {
      expect(selectStsRecord(['v=STSv1; id=a-b']).ok).toBe(false);
    });
  });
});

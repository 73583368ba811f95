import { isFieldValue, parseTaggedFields, selectTaggedRecord } from '../../src/policy/tagged-record';

function fieldsOf(text: string, version = 'v=X1'): { rejected: string | null; seen: Array<[string, string]> } {
  const seen: Array<[string, string]> = [];
  const rejected = parseTaggedFields(text, version, (name, value) => {
    seen.push([name, value]);
    return name === 'stop' ? `stopped at ${value}` : undefined;
  });
  return { rejected, seen };
}

describe('parseTaggedFields', () => {
  it('splits at ";" with optional spaces and tabs around it, allowing one trailing separator', () => {
    expect(fieldsOf('v=X1; a=1 ;\tb=2=3 ;')).toEqual({
      rejected: null,
      seen: [
        ['a', '1'],
        ['b', '2=3'],
      ],
    });
  });

  it('requires the exact version as the first field', () => {
    expect(fieldsOf('v=X2; a=1').rejected).toBe('bad version field "v=X2"');
    expect(fieldsOf(' v=X1; a=1').rejected).toBe('bad version field " v=X1"');
  });

  it('rejects a field without a name or "=", or with a malformed name, before later fields are seen', () => {
    expect(fieldsOf('v=X1; =1; a=2')).toEqual({ rejected: 'malformed field "=1"', seen: [] });
    expect(fieldsOf('v=X1; a=1; noeq').rejected).toBe('malformed field "noeq"');
    expect(fieldsOf('v=X1;; a=1').rejected).toBe('malformed field ""');
    expect(fieldsOf(`v=X1; ${'n'.repeat(33)}=1`).rejected).toBe(`malformed field name "${'n'.repeat(33)}"`);
  });

  it("stops at the first field the caller rejects and returns the caller's reason", () => {
    expect(fieldsOf('v=X1; a=1; stop=here; =bad')).toEqual({
      rejected: 'stopped at here',
      seen: [
        ['a', '1'],
        ['stop', 'here'],
      ],
    });
  });
});

describe('isFieldValue', () => {
  it('accepts printable ASCII without ";" and "=", and nothing empty', () => {
    expect(isFieldValue('abc!~:<>')).toBe(true);
    for (const bad of ['', 'a=b', 'a b', 'a\tb', 'é']) expect(isFieldValue(bad)).toBe(false);
  });
});

describe('selectTaggedRecord', () => {
  const parse = (text: string) => ({ ok: true as const, record: text });
  it('parses the one record the prefix matches and ignores the others', () => {
    expect(selectTaggedRecord(['other', 'v=X1; a=1'], /^v=X1[ \t]*;/, 'v=X1;', parse)).toEqual({ ok: true, record: 'v=X1; a=1' });
  });
  it('names the prefix when none or more than one record matches', () => {
    expect(selectTaggedRecord(['v=X11; a=1'], /^v=X1[ \t]*;/, 'v=X1;', parse)).toEqual({ ok: false, reason: 'no TXT record starting with "v=X1;"' });
    expect(selectTaggedRecord(['v=X1; a', 'v=X1 ;b'], /^v=X1[ \t]*;/, 'v=X1;', parse)).toEqual({ ok: false, reason: '2 TXT records start with "v=X1;" (exactly one is allowed)' });
  });
});

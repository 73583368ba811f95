import { createHash } from 'node:crypto';
import { canonicalJson, chainPortalEvent, GENESIS_HASH, parsePortalEvent, portalEventHash, PortalTrailDamagedError, validPortalId, verifyPortalChain } from '../../src/store/portal-chain';

describe('portal hash chain', () => {
  test('canonical JSON sorts keys at every level and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: true, y: null }], c: 'x' }, u: undefined })).toBe('{"a":{"c":"x","d":[1,{"y":null,"z":true}]},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  });

  test('hash = SHA-256 hex of prevHash + canonical JSON of the event without its hash; the first links to 64 zeros', () => {
    const first = chainPortalEvent('item-1', undefined, { at: 1000, type: 'portal.stored', actor: 'relay', detail: { size: 5 } });
    expect(first).toMatchObject({ itemId: 'item-1', seq: 1, prevHash: GENESIS_HASH });
    expect(GENESIS_HASH).toBe('0'.repeat(64));
    const { hash, ...rest } = first;
    expect(hash).toBe(
      createHash('sha256')
        .update(GENESIS_HASH + canonicalJson(rest))
        .digest('hex'),
    );
    expect(portalEventHash(first)).toBe(hash);
    const second = chainPortalEvent('item-1', first, { at: 2000, type: 'link.opened', actor: 'recipient', ip: '192.0.2.1', uaHash: 'abcdef0123456789' });
    expect(second).toMatchObject({ seq: 2, prevHash: first.hash });
    expect(verifyPortalChain('item-1', [first, second])).toEqual({ ok: true, events: 2 });
    expect(verifyPortalChain('item-1', [])).toEqual({ ok: true, events: 0 });
  });

  test('verification names the first wrong entry: edited, removed, reordered, another item', () => {
    let previous;
    const events = [];
    for (let i = 0; i < 4; i++) {
      previous = chainPortalEvent('item-1', previous, { at: i, type: 'otp.failed', actor: 'recipient' });
      events.push(previous);
    }
    expect(
      verifyPortalChain(
        'item-1',
        events.map((e) => (e.seq === 3 ? { ...e, at: 99 } : e)),
      ),
    ).toMatchObject({ ok: false, seq: 3 });
    expect(verifyPortalChain('item-1', [events[0]!, events[2]!, events[3]!])).toMatchObject({ ok: false, seq: 2 });
    expect(verifyPortalChain('item-1', [events[1]!, events[0]!])).toMatchObject({ ok: false, seq: 1 });
    expect(verifyPortalChain('item-2', events)).toMatchObject({ ok: false, seq: 1 });
    // Rehashing an edited entry still breaks the link of the next one.
    const forged = { ...events[1]!, actor: 'admin:mallory' };
    forged.hash = portalEventHash(forged);
    expect(verifyPortalChain('item-1', [events[0]!, forged, events[2]!])).toMatchObject({ ok: false, seq: 3 });
  });

  test('a stored entry that is not JSON is reported with its number', () => {
    expect(() => parsePortalEvent('item-1', 7, '{"seq":')).toThrow(PortalTrailDamagedError);
    expect(() => parsePortalEvent('item-1', 7, '42')).toThrow(/entry 7/);
  });

  test('portal ids are safe as file names and key parts', () => {
    expect(validPortalId('01JQ0000000000000000AB.0123456789abcdef')).toBe(true);
    for (const bad of ['', '.hidden', '../x', 'a/b', 'a:b', 'x'.repeat(200)]) expect(validPortalId(bad)).toBe(false);
  });
});

describe('canonical JSON stays the text existing chains were hashed over', () => {
  /** The first implementation, kept here as the reference: a stored chain's hashes depend on every byte. */
  function reference(value: unknown): string {
    if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
    if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : reference(v))).join(',')}]`;
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`;
  }

  const samples: unknown[] = [
    // Edge cases: values JSON cannot hold, key orders by code unit, deep nesting; then real record shapes.
    undefined,
    null,
    0,
    -1.5e-7,
    NaN,
    'text "quoted"\n\u2028',
    true,
    [],
    {},
    [undefined, null, [undefined], { a: undefined }],
    { b: 1, a: { d: [1, { z: true, y: null }], c: 'x' }, u: undefined },
    { é: 1, e: 2, E: 3, '\u{1F600}': 4, '\uFFFF': 5, '': 6, '10': 7, '9': 8, a_b: 9, 'a-b': 10 },
    { nested: { deeper: { deepest: [{ k: 'v', j: [1, 2, { i: null }] }] } }, arr: [[], [[]], {}] },
    { fn: () => 1, sym: Symbol('s'), big: { toJSON: () => 'x' } },
    [() => 1, Symbol('s')],
    null,
    undefined,
    0,
    -1.5e-7,
    Number.NaN,
    'text with "quotes", \\ and \u2028 and \u0001',
    true,
    [],
    {},
    [undefined, null, 1, [undefined], { a: undefined }],
    { u: undefined, only: undefined },
    { Z: 1, a: 2, _: 3, '': 4, é: 5, '\ud83d\ude00': 6, '10': 7, '9': 8, 'a"b': 9 },
    { first: undefined, b: [1, { y: undefined, x: [] }], a: { nested: { deeper: { k: 'v', j: null } } } },
    new Date(0),
    {
      kind: 'recipient-outcome',
      at: 1796048740507,
      queueId: '01M8PDHQV3WY0WK0VZ6X8R',
      messageId: '<bench-0@sender.test>',
      recipient: 'user0@bench-1.test',
      sender: 'bench@sender.test',
      actor: 'relay',
      data: {
        outcome: 'delivered',
        reason: 'delivered',
        mx: 'mx1.bench-1.test',
        tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'P-256' },
        detail: undefined,
        mxAttempts: [{ mx: 'mx1.bench-1.test', ip: '127.0.0.10', class: 'ok', certificate: { trusted: true, error: null } }],
      },
      seq: 41,
      day: '2026-11-30',
      loggedAt: 1796048740532,
      prevHash: 'ab'.repeat(32),
    },
  ];

  test.each(samples.map((sample, index) => [index, sample]))('sample %i: same text as the reference', (_index, sample) => {
    expect(canonicalJson(sample)).toBe(reference(sample));
  });

  test('a known record keeps its known text', () => {
    expect(canonicalJson({ b: [undefined, { d: 1, c: undefined }], a: 'x', 'a"': null })).toBe('{"a":"x","a\\"":null,"b":[null,{"d":1}]}');
  });
});

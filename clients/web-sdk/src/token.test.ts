import { describe, expect, it, jest } from '@jest/globals';
import { boundClientId, jwtExpiryMs, randomClientSuffix, TokenSource } from './token.js';

const b64url = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const jwt = (claims: object): string => `${b64url({ alg: 'HS256' })}.${b64url(claims)}.sig`;

describe('jwtExpiryMs', () => {
  it('reads exp, and null for anything else', () => {
    expect(jwtExpiryMs(jwt({ sub: 'u', exp: 1_800_000_000 }))).toBe(1_800_000_000_000);
    expect(jwtExpiryMs(jwt({ sub: 'u' }))).toBeNull();
    expect(jwtExpiryMs('opaque-token')).toBeNull();
    expect(jwtExpiryMs('a.%%%.c')).toBeNull();
  });
});

describe('TokenSource', () => {
  it('calls getToken again only near expiry or when forced, sharing one call between callers', async () => {
    let now = 1_000_000;
    let calls = 0;
    const source = new TokenSource({
      getToken: async () => {
        calls += 1;
        return jwt({ n: calls, exp: Math.floor(now / 1000) + 600 });
      },
      refreshMarginMs: 60_000,
      now: () => now,
    });
    const [a, b] = await Promise.all([source.get(), source.get()]);
    expect(a).toBe(b);
    expect(calls).toBe(1);
    now += 500_000; // 100 s left: not yet within the margin
    expect(await source.get()).toBe(a);
    now += 50_000; // 50 s left
    expect(await source.get()).not.toBe(a);
    expect(calls).toBe(2);
    await source.get(true);
    expect(calls).toBe(3);
  });

  it('keeps a static token and needs one of token or getToken', async () => {
    const source = new TokenSource({ token: 't', refreshMarginMs: 0, now: () => 0 });
    expect(await source.get(true)).toBe('t');
    expect(source.refreshable).toBe(false);
    expect(() => new TokenSource({ refreshMarginMs: 0, now: () => 0 })).toThrow(TypeError);
  });
});

describe('boundClientId', () => {
  it("binds the id to the token's sub", () => {
    expect(boundClientId(jwt({ sub: 'u-1', exp: 1 }), 'abc')).toBe('u-1.abc');
    expect(boundClientId('not-a-jwt', 'abc')).toBe('taskflow-web.abc');
  });

  it('draws suffixes from the CSPRNG: 32 hex characters, never repeating', () => {
    const draw = jest.spyOn(globalThis.crypto, 'getRandomValues');
    randomClientSuffix();
    expect(draw).toHaveBeenCalledTimes(1);
    draw.mockRestore();
    const seen = new Set(Array.from({ length: 1000 }, () => randomClientSuffix()));
    expect(seen.size).toBe(1000);
    for (const s of seen) expect(s).toMatch(/^[0-9a-f]{32}$/);
  });
});

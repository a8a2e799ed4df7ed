// The token an application hands in, kept fresh: a static `token`, or `getToken()` called again
// when the current token is near its JWT `exp`, or when the broker or the replay API rejected it.

export type TokenProvider = () => string | Promise<string>;

/** The claims of a JWT, unverified (the broker verifies), or null when the token is not a JWT. */
function jwtClaims(token: string): Record<string, unknown> | null {
  const payload = token.split('.')[1];
  if (payload === undefined) return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '=');
    const claims: unknown = JSON.parse(atob(base64));
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** `exp` of a JWT in milliseconds, or null when the token is not a JWT with an expiry. */
export function jwtExpiryMs(token: string): number | null {
  const exp = jwtClaims(token)?.exp;
  return typeof exp === 'number' ? exp * 1000 : null;
}

/** `sub` of a JWT (the user id), or null. */
export function jwtSubject(token: string): string | null {
  const sub = jwtClaims(token)?.sub;
  return typeof sub === 'string' && sub !== '' ? sub : null;
}

/**
 * The MQTT client id of a connection: `<user id>.<suffix>` — brokers refuse any other (a client
 * id is bound to the token's user, schemas/CONTRACTS.md). `suffix` is the client's random part,
 * with `-2`, `-3` … for further connections. A token without `sub` gets `taskflow-web.<suffix>`
 * (only brokers that do not check identities accept it).
 */
export function boundClientId(token: string, suffix: string): string {
  return `${jwtSubject(token) ?? 'taskflow-web'}.${suffix}`;
}

/** 16 random bytes as hex, from the platform's CSPRNG (never Math.random: the id must not be guessable). */
export function randomClientSuffix(): string {
  const bytes = new Uint8Array(16);
  // Browsers and Node ≥ 20 (package.json engines) have Web Crypto as a global.
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class TokenSource {
  private current: string | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly options: { token?: string; getToken?: TokenProvider; refreshMarginMs: number; now: () => number },
  ) {
    if (options.token === undefined && options.getToken === undefined) throw new TypeError('createClient: pass token or getToken');
    this.current = options.token;
  }

  get refreshable(): boolean {
    return this.options.getToken !== undefined;
  }

  /** The token to present now; `forceRefresh` after a rejection. Concurrent callers share one call. */
  async get(forceRefresh = false): Promise<string> {
    const getToken = this.options.getToken;
    if (getToken === undefined) return this.current!;
    if (!forceRefresh && this.current !== undefined && !this.nearExpiry(this.current)) return this.current;
    this.pending ??= (async () => {
      try {
        const token = await getToken();
        this.current = token;
        return token;
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }

  private nearExpiry(token: string): boolean {
    const exp = jwtExpiryMs(token);
    return exp !== null && this.options.now() >= exp - this.options.refreshMarginMs;
  }
}

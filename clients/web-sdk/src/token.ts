// The token an application hands in, kept fresh: a static `token`, or `getToken()` called again
// when the current token is near its JWT `exp`, or when the broker or the replay API rejected it.

export type TokenProvider = () => string | Promise<string>;

/** `exp` of a JWT in milliseconds, or null when the token is not a JWT with an expiry. */
export function jwtExpiryMs(token: string): number | null {
  const payload = token.split('.')[1];
  if (payload === undefined) return null;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '=');
    const claims = JSON.parse(atob(base64)) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
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

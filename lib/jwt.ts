// TaskFlow JWTs: the identity browsers present to the broker and the replay API. Always verified,
// never trusted: HS256 with a local secret in development, RS256 against the identity provider's
// key set (JWKS) in production. The user id is the `sub` claim.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, SignJWT, type JSONWebKeySet, type JWTPayload } from 'jose';
import { type Env, int, optionalStr, str } from './config.js';
import { TaskflowError } from './errors.js';

export const DEV_SECRET_FILE = '.taskflow/dev-jwt-secret';
const DEFAULT_ISSUER = 'taskflow';
const DEFAULT_AUDIENCE = 'taskflow-realtime';

export interface VerifiedToken {
  userId: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

export type TokenVerifier = (token: string) => Promise<VerifiedToken>;

export type JwtConfig =
  | { kind: 'hs256'; secret: Uint8Array; issuer: string; audience: string }
  | { kind: 'rs256'; jwks: URL | JSONWebKeySet; issuer: string; audience: string };

/** JWT_JWKS_URL selects RS256 (production); otherwise HS256 with JWT_SECRET or the dev secret file. */
export function loadJwtConfig(env: Env): JwtConfig {
  const issuer = str(env, 'JWT_ISSUER', DEFAULT_ISSUER);
  const audience = str(env, 'JWT_AUDIENCE', DEFAULT_AUDIENCE);
  const jwksUrl = optionalStr(env, 'JWT_JWKS_URL');
  if (jwksUrl) return { kind: 'rs256', jwks: new URL(jwksUrl), issuer, audience };
  const secret = optionalStr(env, 'JWT_SECRET');
  return { kind: 'hs256', secret: secret ? new TextEncoder().encode(secret) : loadOrCreateDevSecret(str(env, 'JWT_SECRET_FILE', DEV_SECRET_FILE)), issuer, audience };
}

/** The local signing secret, created (0600, outside the repo's tracked files) on first use. */
export function loadOrCreateDevSecret(path = DEV_SECRET_FILE): Uint8Array {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, randomBytes(32).toString('base64url'), { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  return new TextEncoder().encode(readFileSync(path, 'utf8').trim());
}

export function createVerifier(cfg: JwtConfig): TokenVerifier {
  const options = { algorithms: [cfg.kind === 'hs256' ? 'HS256' : 'RS256'], issuer: cfg.issuer, audience: cfg.audience, requiredClaims: ['sub', 'exp'] };
  let verifyJwt: (token: string) => Promise<{ payload: JWTPayload }>;
  if (cfg.kind === 'hs256') {
    verifyJwt = (token) => jwtVerify(token, cfg.secret, options);
  } else {
    const keys = cfg.jwks instanceof URL ? createRemoteJWKSet(cfg.jwks) : createLocalJWKSet(cfg.jwks);
    verifyJwt = (token) => jwtVerify(token, keys, options);
  }
  return async (token) => {
    try {
      const { payload } = await verifyJwt(token);
      if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('sub must be a non-empty string');
      return { userId: payload.sub, expiresAt: payload.exp ?? 0 };
    } catch (err) {
      throw new TaskflowError('UNAUTHENTICATED', `invalid token: ${(err as Error).message}`, { cause: err });
    }
  };
}

export async function signDevToken(secret: Uint8Array, userId: string, opts: { ttlSeconds?: number; issuer?: string; audience?: string } = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuer(opts.issuer ?? DEFAULT_ISSUER)
    .setAudience(opts.audience ?? DEFAULT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${opts.ttlSeconds ?? 12 * 3600}s`)
    .sign(secret);
}

/** `taskflow dev token --user U [--ttl SECONDS]`: prints a dev token signed with the local secret. */
export async function printDevToken(argv: string[], env: Env = process.env): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { user: { type: 'string' }, ttl: { type: 'string' } }, allowPositionals: false });
  if (!values.user) {
    console.error('usage: taskflow dev token --user USER_ID [--ttl SECONDS]');
    return 2;
  }
  const cfg = loadJwtConfig(env);
  if (cfg.kind !== 'hs256') throw new TaskflowError('DEV_TOKEN_UNAVAILABLE', 'JWT_JWKS_URL is set: dev tokens are only for the local HS256 secret');
  const ttlSeconds = int({ TTL: values.ttl }, 'TTL', 12 * 3600, { min: 1 });
  console.log(await signDevToken(cfg.secret, values.user, { ttlSeconds, issuer: cfg.issuer, audience: cfg.audience }));
  return 0;
}

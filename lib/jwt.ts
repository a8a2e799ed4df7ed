// TaskFlow JWTs: the identity browsers present to the broker and the replay API. Always verified,
// never trusted: HS256 with a local secret in development, RS256 against the identity provider's
// key set (JWKS) in production. The user id is the `sub` claim.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, SignJWT, type JSONWebKeySet, type JWTPayload } from 'jose';
import { type Env, int, optionalSetting, stringSetting } from './config.js';
import { isDevelopment } from './dev-mode.js';
import { ConfigError, TaskflowError } from './errors.js';

export const DEV_SECRET_FILE = '.taskflow/dev-jwt-secret';
const DEFAULT_ISSUER = 'taskflow';
const DEFAULT_AUDIENCE = 'taskflow-realtime';
/** RFC 7518 §3.2: an HS256 key at least as long as the hash (256 bits); shorter ones fall to offline guessing from one captured token. */
export const MIN_SECRET_BYTES = 32;

export interface VerifiedToken {
  userId: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

export type TokenVerifier = (token: string) => Promise<VerifiedToken>;

export type JwtConfig =
  | { kind: 'hs256'; secret: Uint8Array; issuer: string; audience: string }
  | { kind: 'rs256'; jwks: URL | JSONWebKeySet; issuer: string; audience: string };

export const JWT_SETTINGS = {
  issuer: stringSetting({ name: 'JWT_ISSUER', default: DEFAULT_ISSUER, meaning: 'The `iss` every TaskFlow JWT must carry.' }),
  audience: stringSetting({ name: 'JWT_AUDIENCE', default: DEFAULT_AUDIENCE, meaning: 'The `aud` every TaskFlow JWT must carry.' }),
  jwksUrl: optionalSetting({ name: 'JWT_JWKS_URL', type: 'URL', default: 'unset: HS256', meaning: "The identity provider's key set: tokens are RS256 (production)." }),
  secret: optionalSetting({ name: 'JWT_SECRET', default: 'unset: JWT_SECRET_FILE', meaning: 'HS256 secret (at least 32 bytes), when JWT_JWKS_URL is unset.' }),
  secretFile: stringSetting({ name: 'JWT_SECRET_FILE', default: DEV_SECRET_FILE, meaning: 'HS256 secret file when neither JWT_JWKS_URL nor JWT_SECRET is set, in development mode only; created (0600) on first use.' }),
};

/**
 * JWT_JWKS_URL selects RS256 (production); otherwise HS256 with JWT_SECRET, or — in development
 * mode only — the dev secret file. Anywhere else a missing key set is a start-up error: a
 * service (or authorizer container) inventing its own secret would accept tokens no one else can
 * verify, and silently.
 */
export function loadJwtConfig(env: Env): JwtConfig {
  const issuer = JWT_SETTINGS.issuer.read(env);
  const audience = JWT_SETTINGS.audience.read(env);
  const jwksUrl = JWT_SETTINGS.jwksUrl.read(env);
  if (jwksUrl) return { kind: 'rs256', jwks: new URL(jwksUrl), issuer, audience };
  const secret = JWT_SETTINGS.secret.read(env);
  if (secret) {
    const bytes = new TextEncoder().encode(secret);
    if (bytes.length < MIN_SECRET_BYTES) throw new ConfigError('JWT_SECRET', `must be at least ${MIN_SECRET_BYTES} bytes, got ${bytes.length}`);
    return { kind: 'hs256', secret: bytes, issuer, audience };
  }
  if (!isDevelopment(env)) {
    throw new ConfigError('JWT_JWKS_URL', 'is required (the identity provider\'s key set; or JWT_SECRET for HS256): a generated dev secret is used only in development mode (TASKFLOW_ENV=development, set by `taskflow dev`)');
  }
  return { kind: 'hs256', secret: loadOrCreateDevSecret(JWT_SETTINGS.secretFile.read(env)), issuer, audience };
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

/**
 * A service's MQTT password: the configured one (production: a token issued to the service) or,
 * with the local HS256 secret it verifies with, a token it signs for itself; none otherwise.
 */
export async function servicePassword(configured: string | undefined, jwt: JwtConfig, serviceUserId: string): Promise<string | undefined> {
  if (configured !== undefined) return configured;
  return jwt.kind === 'hs256' ? signDevToken(jwt.secret, serviceUserId, { issuer: jwt.issuer, audience: jwt.audience }) : undefined;
}

export const DEV_TOKEN_USAGE = `usage: taskflow dev token --user USER_ID [--ttl SECONDS]
  Prints a TaskFlow JWT for USER_ID signed with the local HS256 secret (JWT_SECRET, else
  JWT_SECRET_FILE), for the local broker and the replay API.
  --ttl SECONDS   lifetime of the token (default ${12 * 3600})`;

/** `taskflow dev token --user U [--ttl SECONDS]`: prints a dev token signed with the local secret. */
export async function printDevToken(argv: string[], env: Env = process.env): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { user: { type: 'string' }, ttl: { type: 'string' }, help: { type: 'boolean', default: false } }, allowPositionals: false });
  if (values.help) {
    console.log(DEV_TOKEN_USAGE);
    return 0;
  }
  if (!values.user) {
    console.error(DEV_TOKEN_USAGE);
    return 2;
  }
  const cfg = loadJwtConfig(env);
  if (cfg.kind !== 'hs256') throw new TaskflowError('DEV_TOKEN_UNAVAILABLE', 'JWT_JWKS_URL is set: dev tokens are only for the local HS256 secret');
  const ttlSeconds = int({ '--ttl': values.ttl }, '--ttl', 12 * 3600, { min: 1 });
  console.log(await signDevToken(cfg.secret, values.user, { ttlSeconds, issuer: cfg.issuer, audience: cfg.audience }));
  return 0;
}

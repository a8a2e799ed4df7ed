import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ConfigError } from './errors.js';
import { createVerifier, loadJwtConfig, loadOrCreateDevSecret, servicePassword, signDevToken } from './jwt.js';

const secret = new TextEncoder().encode('a-test-secret-of-enough-length-32b');
const hs = { kind: 'hs256' as const, secret, issuer: 'taskflow', audience: 'taskflow-realtime' };

describe('HS256 (dev)', () => {
  it('verifies its own tokens and returns the user', async () => {
    const token = await signDevToken(secret, 'user-1', { ttlSeconds: 60 });
    await expect(createVerifier(hs)(token)).resolves.toMatchObject({ userId: 'user-1' });
  });

  it('rejects a wrong secret, an expired token, another audience, and alg none', async () => {
    const verify = createVerifier(hs);
    await expect(verify(await signDevToken(new TextEncoder().encode('another-secret-another-secret-32'), 'u'))).rejects.toThrow(/invalid token/);
    const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u').setIssuer('taskflow').setAudience('taskflow-realtime').setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(secret);
    await expect(verify(expired)).rejects.toThrow(/exp/);
    await expect(verify(await signDevToken(secret, 'u', { audience: 'other' }))).rejects.toThrow(/aud/);
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'u', iss: 'taskflow', aud: 'taskflow-realtime', exp: 9e9 })).toString('base64url')}.`;
    await expect(verify(unsigned)).rejects.toThrow(/invalid token/);
  });

  it("gives a service the configured password, else a token of its own user signed with the dev secret, else none", async () => {
    await expect(servicePassword('issued', hs, 'service:router')).resolves.toBe('issued');
    await expect(createVerifier(hs)((await servicePassword(undefined, hs, 'service:router'))!)).resolves.toMatchObject({ userId: 'service:router' });
    const { publicKey } = await generateKeyPair('RS256');
    const rs = { kind: 'rs256' as const, jwks: { keys: [await exportJWK(publicKey)] }, issuer: 'taskflow', audience: 'taskflow-realtime' };
    await expect(servicePassword(undefined, rs, 'service:router')).resolves.toBeUndefined();
  });

  it('creates the dev secret once, readable by the owner only', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'jwt-')), 'nested', 'secret');
    const first = loadOrCreateDevSecret(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(loadOrCreateDevSecret(path)).toEqual(first);
    expect(loadJwtConfig({ JWT_SECRET_FILE: path, TASKFLOW_ENV: 'development' })).toMatchObject({ kind: 'hs256', secret: first });
  });
});

describe('key material outside development mode', () => {
  it('is a start-up error naming JWT_JWKS_URL when neither a key set nor a secret is configured, and no secret file appears', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'jwt-')), 'secret');
    for (const env of [{ JWT_SECRET_FILE: path }, { JWT_SECRET_FILE: path, TASKFLOW_ENV: 'production' }]) {
      expect(() => loadJwtConfig(env)).toThrow(ConfigError);
      expect(() => loadJwtConfig(env)).toThrow(/^JWT_JWKS_URL: is required .*development mode \(TASKFLOW_ENV=development/);
    }
    expect(existsSync(path)).toBe(false);
  });

  it('takes JWT_JWKS_URL or a JWT_SECRET of at least 32 bytes, and refuses a guessable secret', () => {
    expect(loadJwtConfig({ JWT_JWKS_URL: 'https://idp.example/.well-known/jwks.json' })).toMatchObject({ kind: 'rs256' });
    expect(loadJwtConfig({ JWT_SECRET: 'x'.repeat(32) })).toMatchObject({ kind: 'hs256' });
    expect(() => loadJwtConfig({ JWT_SECRET: 'short-secret' })).toThrow(/^JWT_SECRET: must be at least 32 bytes, got 12/);
    expect(() => loadJwtConfig({ JWT_SECRET: 'short-secret', TASKFLOW_ENV: 'development' })).toThrow(/JWT_SECRET/);
  });

  it('names TASKFLOW_ENV when it holds neither mode', () => {
    expect(() => loadJwtConfig({ TASKFLOW_ENV: 'dev' })).toThrow(/^TASKFLOW_ENV: must be one of development, production/);
  });
});

describe('RS256 (production, key set)', () => {
  it('verifies against the JWKS and refuses an HS256 token signed with the public key', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
    const verify = createVerifier({ kind: 'rs256', jwks: { keys: [jwk] }, issuer: 'taskflow', audience: 'taskflow-realtime' });
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('user-9').setIssuer('taskflow').setAudience('taskflow-realtime').setExpirationTime('1h').sign(privateKey);
    await expect(verify(token)).resolves.toMatchObject({ userId: 'user-9' });
    await expect(verify(await signDevToken(secret, 'user-9'))).rejects.toThrow(/invalid token/);
  });
});

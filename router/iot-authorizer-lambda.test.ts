import { describe, expect, it } from '@jest/globals';
import { authorizerFromEnv, parsePublisherUserIds } from './iot-authorizer-lambda.js';

describe('IoT Core authorizer Lambda configuration', () => {
  it('refuses to start (every invocation fails) without a key set instead of inventing a secret', () => {
    // A Lambda container is never in development mode: a generated secret there would accept only
    // tokens signed by itself, differently in every container.
    expect(() => authorizerFromEnv({ AWS_REGION: 'us-east-1', IOT_ACCOUNT_ID: '123456789012' })).toThrow(/^JWT_JWKS_URL: is required/);
  });

  it('starts with the identity provider key set', () => {
    expect(typeof authorizerFromEnv({ AWS_REGION: 'us-east-1', IOT_ACCOUNT_ID: '123456789012', JWT_JWKS_URL: 'https://idp.example/jwks.json' })).toBe('function');
  });

  it("reads IOT_PUBLISHER_USER_IDS as a list of token subjects, `none` as no publisher at all (not a user named none)", () => {
    expect(parsePublisherUserIds('service:router, service:other ,')).toEqual(['service:router', 'service:other']);
    expect(parsePublisherUserIds('none')).toEqual([]);
  });
});

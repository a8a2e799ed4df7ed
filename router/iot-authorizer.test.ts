import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { canConnect, canSubscribe, type Membership, projectTopicOf } from '../lib/authz.js';
import { createVerifier, signDevToken } from '../lib/jwt.js';
import { policyAllows as judge } from '../infra/local/iot-policy.js';
import { createIotAuthorizer, iotPolicyDocuments } from './iot-authorizer.js';

const account = { region: 'eu-west-1', accountId: '123456789012' };
const U = '66666666-6666-4666-8666-666666666666';

interface Statement {
  Action: string;
  Resource: string | string[];
}

function allowed(docs: string[], action: string): string[] {
  return docs.flatMap((d) => (JSON.parse(d) as { Statement: Statement[] }).Statement.filter((s) => s.Action === action).flatMap((s) => s.Resource));
}

/** Whether some of `resources` (Allow statements' resources) match `resource`: IoT's policy engine, as the local stand-in judges it. */
function policyAllows(resources: string[], resource: string): boolean {
  return resources.length > 0 && judge([JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'x', Resource: resources }] })], 'x', resource);
}

describe('iotPolicyDocuments', () => {
  it('allows subscribing exactly where lib/authz allows it (concrete project topics)', () => {
    const ms = fc.array(fc.record({ workspaceId: fc.constantFrom('w1', 'w2'), projectId: fc.option(fc.constantFrom('p1', 'p2'), { nil: null }), role: fc.constant('member' as const) }), { maxLength: 4 });
    fc.assert(
      fc.property(ms, fc.constantFrom('w1', 'w2', 'w3'), fc.constantFrom('p1', 'p2', 'p3'), (memberships: Membership[], w, p) => {
        const docs = iotPolicyDocuments(U, memberships, account);
        const topic = projectTopicOf(w, p);
        const subscribe = policyAllows(allowed(docs, 'iot:Subscribe'), `arn:aws:iot:eu-west-1:123456789012:topicfilter/${topic}`);
        const receive = policyAllows(allowed(docs, 'iot:Receive'), `arn:aws:iot:eu-west-1:123456789012:topic/${topic}`);
        expect(subscribe).toBe(canSubscribe(U, memberships, topic));
        expect(receive).toBe(subscribe);
      }),
    );
  });

  it('allows connecting exactly with the client ids lib/authz binds to the user', () => {
    const other = '66666666-6666-4666-8666-000000000000';
    const clientId = fc.oneof(
      fc.string({ maxLength: 60 }).map((s) => `${U}.${s}`),
      fc.string({ maxLength: 60 }).map((s) => `${other}.${s}`),
      fc.string({ maxLength: 60 }).map((s) => `${U}${s}`),
    );
    fc.assert(
      fc.property(clientId, (id) => {
        const connect = policyAllows(allowed(iotPolicyDocuments(U, [], account), 'iot:Connect'), `arn:aws:iot:eu-west-1:123456789012:client/${id}`);
        expect(connect).toBe(canConnect(U, id));
      }),
    );
  });

  it('keeps every document within IoT Core limits', () => {
    const many: Membership[] = Array.from({ length: 500 }, (_, i) => ({ workspaceId: 'w', projectId: `p-${String(i).padStart(36, '0')}`, role: 'member' }));
    const docs = iotPolicyDocuments(U, many, account);
    expect(docs.length).toBeLessThanOrEqual(10);
    for (const d of docs) expect(d.length).toBeLessThanOrEqual(2048);
  });
});

describe('createIotAuthorizer', () => {
  const secret = new TextEncoder().encode('iot-authorizer-test-secret-32-bytes');
  const authorize = createIotAuthorizer({
    verify: createVerifier({ kind: 'hs256', secret, issuer: 'taskflow', audience: 'taskflow-realtime' }),
    memberships: async (userId) => (userId === U ? [{ workspaceId: 'w1', projectId: 'p1', role: 'viewer' }] : []),
    account,
  });

  it('authenticates a valid token from the MQTT password', async () => {
    const token = await signDevToken(secret, U, { ttlSeconds: 3600 });
    const res = await authorize({ protocols: ['mqtt'], protocolData: { mqtt: { username: 'x', password: Buffer.from(token).toString('base64') } } });
    expect(res.isAuthenticated).toBe(true);
    expect(res.principalId).toBe(U.replace(/-/g, ''));
    expect(res.disconnectAfterInSeconds).toBeGreaterThanOrEqual(3500);
    expect(allowed(res.policyDocuments, 'iot:Subscribe')).toContain(`arn:aws:iot:eu-west-1:123456789012:topicfilter/${projectTopicOf('w1', 'p1')}`);
  });

  it("denies an MQTT connection whose client id is not the token's user's", async () => {
    const token = await signDevToken(secret, U, { ttlSeconds: 3600 });
    const password = Buffer.from(token).toString('base64');
    await expect(authorize({ protocols: ['mqtt'], protocolData: { mqtt: { password, clientId: `66666666-6666-4666-8666-000000000000.abc` } } })).resolves.toMatchObject({ isAuthenticated: false });
    await expect(authorize({ protocols: ['mqtt'], protocolData: { mqtt: { password, clientId: `${U}.abc` } } })).resolves.toMatchObject({ isAuthenticated: true });
    const unbindable = await signDevToken(secret, 'alice@example.com', { ttlSeconds: 3600 });
    await expect(authorize({ token: unbindable })).resolves.toMatchObject({ isAuthenticated: false });
  });

  it('denies a missing or forged token', async () => {
    await expect(authorize({})).resolves.toMatchObject({ isAuthenticated: false, policyDocuments: [] });
    const forged = await signDevToken(new TextEncoder().encode('not-the-secret-not-the-secret-32'), U);
    await expect(authorize({ token: forged })).resolves.toMatchObject({ isAuthenticated: false });
  });
});

import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { canConnect, canReadProject, canSubscribe, clientIdUser, filterCovers, isBindableUserId, type Membership, projectTopicOf, readableProjects, subscriptionGrants, userTopicOf } from './authz.js';

const U = 'user-1';

describe('subscriptionGrants', () => {
  it('grants project topics by membership scope and the own user topic per workspace', () => {
    const ms: Membership[] = [
      { workspaceId: 'w1', projectId: null, role: 'viewer' },
      { workspaceId: 'w1', projectId: 'p9', role: 'member' },
      { workspaceId: 'w2', projectId: 'p1', role: 'member' },
    ];
    expect(subscriptionGrants(U, ms)).toEqual([projectTopicOf('w1', '+'), userTopicOf('w1', U), projectTopicOf('w2', 'p1'), userTopicOf('w2', U)].sort());
  });

  it('decides subscriptions', () => {
    const ms: Membership[] = [
      { workspaceId: 'w1', projectId: null, role: 'member' },
      { workspaceId: 'w2', projectId: 'p1', role: 'viewer' },
    ];
    expect(canSubscribe(U, ms, projectTopicOf('w1', 'any'))).toBe(true);
    expect(canSubscribe(U, ms, projectTopicOf('w1', '+'))).toBe(true);
    expect(canSubscribe(U, ms, projectTopicOf('w2', 'p1'))).toBe(true);
    expect(canSubscribe(U, ms, projectTopicOf('w2', 'p2'))).toBe(false);
    expect(canSubscribe(U, ms, projectTopicOf('w2', '+'))).toBe(false);
    expect(canSubscribe(U, ms, 'taskflow/v1/ws/w1/#')).toBe(false);
    expect(canSubscribe(U, ms, '#')).toBe(false);
    expect(canSubscribe(U, ms, userTopicOf('w2', U))).toBe(true);
    expect(canSubscribe(U, ms, userTopicOf('w2', 'someone-else'))).toBe(false);
    expect(canSubscribe(U, ms, userTopicOf('w3', U))).toBe(false);
    expect(canSubscribe(U, [], projectTopicOf('w1', 'p1'))).toBe(false);
    expect(canReadProject(U, ms, 'w2', 'p1')).toBe(true);
    expect(canReadProject(U, ms, 'w2', '+')).toBe(false);
  });

  it('ignores ids that would smuggle wildcards into a grant', () => {
    expect(subscriptionGrants(U, [{ workspaceId: '+', projectId: null, role: 'member' }])).toEqual([]);
    expect(subscriptionGrants(U, [{ workspaceId: 'w', projectId: '#', role: 'member' }])).toEqual([userTopicOf('w', U)]);
  });
});

describe('canSubscribe, for any memberships', () => {
  const ids = fc.constantFrom('w1', 'w2');
  const projects = fc.constantFrom('p1', 'p2', 'p3');
  const membership = fc.record({ workspaceId: ids, projectId: fc.option(projects, { nil: null }), role: fc.constantFrom('owner' as const, 'viewer' as const) });
  const filter = fc.tuple(ids, fc.constantFrom('projects', 'users'), fc.constantFrom('p1', 'p2', 'p3', '+', '#', U, 'u2')).map(([w, kind, last]) => `taskflow/v1/ws/${w}/${kind}/${last}`);

  it('never lets a filter reach a project or user topic the memberships do not cover', () => {
    fc.assert(
      fc.property(fc.array(membership, { maxLength: 4 }), filter, (ms, f) => {
        if (!canSubscribe(U, ms, f)) return;
        for (const w of ['w1', 'w2']) {
          for (const p of ['p1', 'p2', 'p3']) {
            if (filterCovers(f, projectTopicOf(w, p))) expect(ms.some((m) => m.workspaceId === w && (m.projectId === null || m.projectId === p))).toBe(true);
          }
          if (filterCovers(f, userTopicOf(w, 'u2'))) throw new Error(`${f} reaches another user's topic`);
          if (filterCovers(f, userTopicOf(w, U))) expect(ms.some((m) => m.workspaceId === w)).toBe(true);
        }
      }),
    );
  });
});

describe('readableProjects, for any memberships', () => {
  const membership = fc.record({ workspaceId: fc.constantFrom('w1', 'w2'), projectId: fc.option(fc.constantFrom('p1', 'p2', 'p3'), { nil: null }), role: fc.constantFrom('member' as const) });

  it('lists exactly the projects canReadProject allows', () => {
    fc.assert(
      fc.property(fc.array(membership, { maxLength: 4 }), fc.constantFrom('w1', 'w2', 'w/+'), (ms, w) => {
        const readable = readableProjects(U, ms, w);
        for (const p of ['p1', 'p2', 'p3', 'p4']) expect(readable === 'all' || readable.includes(p)).toBe(canReadProject(U, ms, w, p));
      }),
    );
  });
});

describe('filterCovers', () => {
  const level = fc.constantFrom('a', 'b', '+', '#');
  const filterArb = fc.array(level, { minLength: 1, maxLength: 4 }).filter((ls) => !ls.slice(0, -1).includes('#')).map((ls) => ls.join('/'));
  const topicArb = fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 5 }).map((ls) => ls.join('/'));

  function matches(filter: string, topic: string): boolean {
    return filterCovers(filter, topic);
  }

  it('is sound: if grant covers filter, every topic the filter matches the grant matches', () => {
    fc.assert(
      fc.property(filterArb, filterArb, topicArb, (grant, filter, topic) => {
        if (filterCovers(grant, filter) && matches(filter, topic)) expect(matches(grant, topic)).toBe(true);
      }),
    );
  });

  it('matches topics like MQTT', () => {
    expect(filterCovers('a/+/c', 'a/b/c')).toBe(true);
    expect(filterCovers('a/+', 'a/b/c')).toBe(false);
    expect(filterCovers('a/#', 'a/b/c')).toBe(true);
    expect(filterCovers('a/b', 'a/+')).toBe(false);
  });
});

describe('client ids bound to their user', () => {
  const A = '66666666-6666-4666-8666-00000000000a';
  const B = '66666666-6666-4666-8666-00000000000b';

  it('accepts only `<own user id>.<suffix>`', () => {
    expect(canConnect(A, `${A}.3f9a1c`)).toBe(true);
    expect(canConnect(A, `${A}.3f9a1c-2`)).toBe(true);
    expect(canConnect('service:router', 'service:router.host-1-0')).toBe(true);
    expect(canConnect(B, `${A}.3f9a1c`)).toBe(false);
    expect(canConnect(A, `${A}.`)).toBe(false);
    expect(canConnect(A, A)).toBe(false);
    expect(canConnect(A, `${A}-3f9a1c`)).toBe(false);
    expect(canConnect(A, 'mqttjs_1234')).toBe(false);
    expect(canConnect(A, `${A}.${'x'.repeat(128)}`)).toBe(false);
  });

  it('refuses user ids that could widen the IoT policy resource or smuggle the separator', () => {
    for (const bad of ['*', 'a?', 'a.b', 'a/b', '+', '#', '${iot:ClientId}', '', 'x'.repeat(65)]) {
      expect(isBindableUserId(bad)).toBe(false);
      expect(canConnect(bad, `${bad}.suffix`)).toBe(false);
    }
  });

  it('names the user of a bound id, and only of a bound id', () => {
    expect(clientIdUser(`${A}.abc-2`)).toBe(A);
    expect(clientIdUser('service:router.host.example-0')).toBe('service:router');
    expect(clientIdUser('mqttjs_1234')).toBeUndefined();
    expect(clientIdUser(`.${A}`)).toBeUndefined();
  });

  it('no client id is accepted for two different users, and the owner is the one it names', () => {
    const userId = fc.stringMatching(/^[A-Za-z0-9_:-]{1,12}$/);
    fc.assert(
      fc.property(userId, userId, fc.string({ minLength: 1, maxLength: 20 }), (u, v, suffix) => {
        const id = `${u}.${suffix}`;
        expect(canConnect(u, id)).toBe(true);
        expect(clientIdUser(id)).toBe(u);
        if (u !== v) expect(canConnect(v, id)).toBe(false);
      }),
    );
  });
});

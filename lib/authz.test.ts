import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { canReadProject, canSubscribe, filterCovers, type Membership, projectTopicOf, subscriptionGrants, userTopicOf } from './authz.js';

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

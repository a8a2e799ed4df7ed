import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Rng, stableUuid } from './random.js';
import { changeSql, longText, planTransaction, rowChanges, sqlLiteral, STATUSES, type PlannedChange, type ProjectModel } from './workload-plan.js';
import { shareOf, summarizeLatencies, workloadTenantIds } from './workload.js';

function freshProject(tasks = 12): ProjectModel {
  const users = Array.from({ length: 6 }, (_, i) => stableUuid(`u${i}`));
  return {
    workspaceId: stableUuid('ws'),
    projectId: stableUuid('p'),
    workspaceUsers: users,
    tasks: new Map(
      Array.from({ length: tasks }, (_, i) => {
        const id = stableUuid(`t${i}`);
        return [id, { id, status: STATUSES[i % 4]!, position: 1024 * (i + 1), commentIds: [] }] as const;
      }),
    ),
    members: new Map([[users[0]!, stableUuid('m0')], [users[1]!, stableUuid('m1')]]),
    workspace: { owner: users[0]!, users: [...users, stableUuid('u-new')], members: new Map(users.map((u) => [u, stableUuid(`wm-${u}`)])) },
  };
}

/** Replays planned changes against an independent record of which rows exist. */
function checkAgainstRows(project: ProjectModel, plans: PlannedChange[][]) {
  const tasks = new Set(project.tasks.keys());
  const comments = new Map<string, string>(); // comment → task
  const members = new Map(project.members);
  const wsMembers = new Map(project.workspace!.members);
  for (const tx of plans) {
    for (const c of tx) {
      switch (c.kind) {
        case 'task.create':
          expect(tasks.has(c.taskId)).toBe(false);
          tasks.add(c.taskId);
          break;
        case 'task.delete':
          expect(tasks.has(c.taskId)).toBe(true);
          expect(c.commentIds.sort()).toEqual([...comments].filter(([, t]) => t === c.taskId).map(([id]) => id).sort());
          for (const id of c.commentIds) comments.delete(id);
          tasks.delete(c.taskId);
          break;
        case 'comment.create':
          expect(tasks.has(c.taskId)).toBe(true);
          expect(comments.has(c.commentId)).toBe(false);
          comments.set(c.commentId, c.taskId);
          break;
        case 'membership.add':
          expect(members.has(c.userId)).toBe(false);
          members.set(c.userId, c.membershipId);
          break;
        case 'membership.remove':
          expect(members.get(c.userId)).toBe(c.membershipId);
          members.delete(c.userId);
          break;
        case 'membership.role':
          expect(members.get(c.userId)).toBe(c.membershipId);
          break;
        case 'comment.edit':
          expect(comments.has(c.commentId)).toBe(true);
          break;
        case 'workspace.member.add':
          expect(wsMembers.has(c.userId)).toBe(false);
          wsMembers.set(c.userId, c.membershipId);
          break;
        case 'workspace.member.remove':
          expect(wsMembers.get(c.userId)).toBe(c.membershipId);
          expect(c.userId).not.toBe(project.workspace!.owner);
          wsMembers.delete(c.userId);
          break;
        default:
          expect(tasks.has(c.taskId)).toBe(true);
      }
    }
  }
}

describe('workload planner', () => {
  it('is deterministic for a seed', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const run = () => {
          const rng = new Rng(seed);
          const p = freshProject();
          return Array.from({ length: 20 }, () => planTransaction(rng, p));
        };
        expect(run()).toEqual(run());
      }),
      { numRuns: 15 },
    );
  });

  it('only touches rows that exist, never creates one twice, keeps sizes in bounds', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 20 }), (seed, maxTxSize) => {
        const rng = new Rng(seed);
        const p = freshProject();
        const before = freshProject();
        const plans = Array.from({ length: 100 }, () => planTransaction(rng, p, { maxTxSize, minTasks: 5 }));
        for (const tx of plans) expect(tx.length >= 1 && tx.length <= maxTxSize).toBe(true);
        checkAgainstRows(before, plans);
        expect(p.tasks.size).toBeGreaterThanOrEqual(5);
        expect(p.members.size).toBeGreaterThanOrEqual(1);
        expect(p.workspace!.members.size).toBeGreaterThanOrEqual(2);
        expect(p.workspace!.members.has(p.workspace!.owner)).toBe(true);
      }),
      { numRuns: 15 },
    );
  });

  it('produces a realistic mix: edits dominate, every kind appears, some descriptions exceed 2 KB', () => {
    const rng = new Rng(7);
    const p = freshProject();
    const all = Array.from({ length: 2000 }, () => planTransaction(rng, p)).flat();
    const kinds = new Set(all.map((c) => c.kind));
    expect(kinds.size).toBe(14);
    const big = all.filter((c) => c.kind === 'task.description' && c.description.length > 2048);
    expect(big.length).toBeGreaterThan(10);
    const sizes = Array.from({ length: 500 }, () => planTransaction(rng, p).length);
    expect(sizes.filter((s) => s === 1).length).toBeGreaterThan(200);
    expect(Math.max(...sizes)).toBeGreaterThan(10);
  });

  it('reports a task delete as its comments then the task, in SQL order', () => {
    const p = freshProject();
    const change: PlannedChange = { kind: 'task.delete', taskId: 'T', commentIds: ['C1', 'C2'] };
    expect(rowChanges(change)).toEqual([
      { table: 'comments', op: 'delete', id: 'C1' },
      { table: 'comments', op: 'delete', id: 'C2' },
      { table: 'tasks', op: 'delete', id: 'T' },
    ]);
    const sql = changeSql(p, change);
    expect(sql.map((s) => s.split(' ')[2])).toEqual(['comments', 'comments', 'tasks']);
  });

  it('escapes literals', () => {
    expect(sqlLiteral("it's")).toBe("'it''s'");
    expect(sqlLiteral('a\\b')).toBe("E'a\\\\b'");
    expect(sqlLiteral(null)).toBe('NULL');
    expect(sqlLiteral(1.5)).toBe('1.5');
    expect(longText(new Rng(1), 3000).length).toBeGreaterThanOrEqual(3000);
  });
});

describe('workload helpers', () => {
  it('splits a transaction budget exactly over connections', () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.integer({ min: 1, max: 16 }), (total, n) => {
        const shares = Array.from({ length: n }, (_, i) => shareOf(total, i, n));
        expect(shares.reduce((a, b) => a + b, 0)).toBe(total);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('summarizes latencies by nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(summarizeLatencies(values)).toEqual({ p50: 50, p95: 95, p99: 99, max: 100 });
    expect(summarizeLatencies([])).toEqual({ p50: 0, p95: 0, p99: 0, max: 0 });
  });

  it('gives each seed its own tenants', () => {
    const a = workloadTenantIds({ workspaces: 2, projectsPerWorkspace: 3, seed: 1 });
    const b = workloadTenantIds({ workspaces: 2, projectsPerWorkspace: 3, seed: 2 });
    expect(a.workspaces[1]!.projects).toHaveLength(3);
    expect(a.workspaces[0]!.id).not.toBe(b.workspaces[0]!.id);
    expect(workloadTenantIds({ workspaces: 2, projectsPerWorkspace: 3, seed: 1 })).toEqual(a);
  });
});

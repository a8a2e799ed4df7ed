import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { StreamEvent } from '@taskflow/stream/events';
import { notifyBatch, type PipelineDeps } from './pipeline.js';
import { mergeWatches, type Notification, type Watchers } from './rules.js';
import { historyOf, steps } from './test-histories.js';

class Crash extends Error {}

/** In-memory ports that crash at the chosen write numbers, as a SIGKILL between two writes would. */
function crashingWorld(crashAt: ReadonlySet<number>) {
  let writes = 0;
  const write = () => {
    writes += 1;
    if (crashAt.has(writes)) throw new Crash(`crash at write ${writes}`);
  };
  const inbox = new Map<string, Notification>();
  const conflicts: string[] = [];
  const watchers = new Map<string, Watchers>();
  const delivered = new Set<string>();
  const deps: PipelineDeps = {
    memberships: { apply: async () => write() },
    inbox: {
      async add(ns) {
        for (const n of ns) {
          write();
          const key = `${n.userId}/${n.id}`;
          const had = inbox.get(key);
          // The real inbox keeps the first; a different second one would be a rule that is not deterministic.
          if (had && JSON.stringify(had) !== JSON.stringify(n)) conflicts.push(key);
          if (!had) inbox.set(key, n);
        }
      },
    },
    watchers: {
      watchers: async (tasks) => new Map(tasks.flatMap((t) => (watchers.has(t) ? [[t, watchers.get(t)!] as const] : []))),
      async record(ws) {
        for (const w of ws) {
          write();
          watchers.set(w.taskId, mergeWatches(watchers.get(w.taskId) ?? new Map(), [w]));
        }
      },
    },
    delivery: {
      async deliver(ns) {
        for (const n of ns) {
          write();
          delivered.add(`${n.userId}/${n.id}`);
        }
        return ns.length;
      },
    },
  };
  return { deps, inbox, conflicts, delivered, checkpoint: write };
}

/** Reads the stream from `from` to its end in batches of the given sizes, restarting from the checkpoint after each crash. */
async function consume(events: readonly StreamEvent[], world: ReturnType<typeof crashingWorld>, sizes: readonly number[], from = 0): Promise<number> {
  let checkpoint = from;
  let crashes = 0;
  let turn = 0;
  while (checkpoint < events.length) {
    const size = 1 + (sizes[turn++ % Math.max(1, sizes.length)] ?? 0);
    const end = Math.min(events.length, checkpoint + size);
    try {
      await notifyBatch(events.slice(checkpoint, end), world.deps);
      world.checkpoint();
      checkpoint = end;
    } catch (err) {
      if (!(err instanceof Crash)) throw err;
      crashes += 1;
    }
  }
  return crashes;
}

const key = (n: Notification) => `${n.userId}/${n.id}`;

describe('notifyBatch', () => {
  it('leaves exactly the expected notifications in the inbox after crashes between any two writes, restarts and a replay', async () => {
    await fc.assert(
      fc.asyncProperty(
        steps,
        fc.uniqueArray(fc.integer({ min: 1, max: 400 }), { maxLength: 12 }),
        fc.array(fc.nat({ max: 6 }), { minLength: 1, maxLength: 6 }),
        fc.option(fc.tuple(fc.nat(), fc.array(fc.nat({ max: 6 }), { minLength: 1, maxLength: 6 })), { nil: undefined }),
        async (list, crashAt, sizes, replay) => {
          const h = historyOf(list);
          const world = crashingWorld(new Set(crashAt));
          await consume(h.events, world, sizes);
          // Someone resets the consumer to an earlier position (or the trim horizon) and it reads on from there.
          if (replay && h.events.length > 0) await consume(h.events, world, replay[1], replay[0] % h.events.length);

          expect(world.conflicts).toEqual([]);
          expect([...world.inbox.values()].sort((a, b) => key(a).localeCompare(key(b)))).toEqual([...h.notifications].sort((a, b) => key(a).localeCompare(key(b))));
          // Every stored notification went out live at least once (its batch was not checkpointed before).
          for (const n of h.notifications) expect(world.delivered.has(key(n))).toBe(true);
        },
      ),
    );
  });
});

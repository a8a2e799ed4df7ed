// `npm run bench:validate`: events/s through validateEvent, the routers' per-event check.
// Single thread; objects already parsed, and with JSON.parse included as a router does it.
import fc from 'fast-check';
import { loadavg } from 'node:os';
import { median, writeBenchResult } from './report.js';
import { arbitraryEvent, sampleEvent, type SampleKind } from '../../schemas/fixtures.js';
import { compileValidators } from '../../schemas/compile-validators.js';
import { schemaDocuments } from '../../schemas/generated/schemas.js';
import { validateEvent } from '../../schemas/validate.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PER_RUN = Number(process.env.BENCH_EVENTS ?? 100_000);

// A realistic mix: mostly task updates, some creates, comments, memberships, projects.
const MIX: SampleKind[] = ['task.updated', 'task.updated', 'task.updated', 'task.created', 'comment.created', 'task.updated', 'membership.created', 'project.updated'];

function eventsPerSecond(events: readonly unknown[], parse: boolean): number {
  const json = events.map((e) => JSON.stringify(e));
  const rates: number[] = [];
  for (let run = 0; run < RUNS + 1; run += 1) {
    const start = performance.now();
    for (let i = 0; i < PER_RUN; i += 1) {
      const result = validateEvent(parse ? JSON.parse(json[i % json.length]!) : events[i % events.length]);
      if (!result.ok) throw new Error(`${result.reason}: ${result.message}`);
    }
    if (run > 0) rates.push(PER_RUN / ((performance.now() - start) / 1000)); // run 0 warms up
  }
  return Math.round(median(rates));
}

const load = loadavg()[0];
const compileStart = performance.now();
compileValidators(schemaDocuments);
const compileMs = performance.now() - compileStart;
const mixed = MIX.map((kind, i) => sampleEvent(kind, { txIndex: i, txSize: MIX.length }));
const random = fc.sample(arbitraryEvent(), { numRuns: 2000, seed: 42 });

const metrics = {
  validate_events_per_s_median: eventsPerSecond(mixed, false),
  parse_and_validate_events_per_s_median: eventsPerSecond(mixed, true),
  random_events_per_s_median: eventsPerSecond(random, false),
  compile_ms: Math.round(compileMs),
};
const path = writeBenchResult(
  'validate',
  { runs: RUNS, eventsPerRun: PER_RUN, eventBytes: JSON.stringify(mixed[0]).length, loadavg1AtStart: load },
  metrics,
);
console.log(JSON.stringify(metrics), '→', path);

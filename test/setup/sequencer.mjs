// Jest's order (failed first, then slowest by its cache, else largest file) with the CDK synths
// first. A synth grows its worker's heap past a gigabyte, and exiting such a worker takes longer
// than jest-worker's 500 ms grace ("a worker process has failed to exit gracefully"). Run early,
// the worker is replaced after the synth (workerIdleMemoryLimit); run last, as a clean clone's
// size order placed the small nag.test.ts, it was still that big when jest ended it.
import TestSequencer from '@jest/test-sequencer';

const SYNTH = /\/infra\/aws\/[^/]+\.test\.ts$/;

export default class SynthsFirst extends TestSequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    return [...sorted.filter((t) => SYNTH.test(t.path)), ...sorted.filter((t) => !SYNTH.test(t.path))];
  }
}

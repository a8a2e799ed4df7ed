// Every property test of a run uses one seed: FC_SEED when set (replay a failure with
// `FC_SEED=<seed> npm test -- <file>`), else the one scripts/test.mjs derives from the commit, so
// CI's run of a commit can be reproduced exactly. FC_NUM_RUNS overrides the run count of tests
// that do not set their own. fast-check prints the seed and path of any failure it finds.
import fc from 'fast-check';

const seed = Number(process.env.FC_SEED);
const numRuns = Number(process.env.FC_NUM_RUNS);
fc.configureGlobal({
  ...(Number.isSafeInteger(seed) && process.env.FC_SEED ? { seed } : {}),
  ...(Number.isSafeInteger(numRuns) && numRuns > 0 ? { numRuns } : {}),
});

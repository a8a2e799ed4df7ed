// A processor process for gdpr-request-store.test.ts: drives one erasure request on the real
// DynamoDB stand-in (request store and subject keys) over sinks that are directories of files,
// purged one file at a time so that a SIGKILL from the test lands in the middle of a purge.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ErasureSink, SubjectIdentifiers } from '../../../lib/erasure.js';
import { identifierStrings } from '../../../lib/erasure.js';
import { createDynamoClient, loadAwsConfig } from '../../../lib/aws.js';
import { createSubjectKeyStore, loadSubjectKeyConfig } from '../../../lib/subject-keys.js';
import { ErasureProcessor } from '../../../gdpr/processor.js';
import { DynamoRequestStore } from '../../../gdpr/request-store.js';

const env = process.env;
const sinkDir = env.GDPR_TEST_SINK_DIR!;
const pauseMs = Number(env.GDPR_TEST_PURGE_PAUSE_MS ?? '0');

function holding(dir: string, ids: SubjectIdentifiers): string[] {
  const needles = identifierStrings(ids);
  return readdirSync(dir).filter((f) => needles.some((n) => readFileSync(join(dir, f), 'utf8').includes(n)));
}

function dirSink(name: string): ErasureSink {
  const dir = join(sinkDir, name);
  return {
    sink: name,
    async purge(ids) {
      let changed = 0;
      for (const f of holding(dir, ids)) {
        rmSync(join(dir, f), { force: true });
        changed += 1;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
      return { changed };
    },
    scan(ids) {
      return Promise.resolve({ scanned: readdirSync(dir).length, found: holding(dir, ids).length });
    },
  };
}

const dynamo = createDynamoClient(loadAwsConfig(env));
const store = new DynamoRequestStore(dynamo, env.DYNAMODB_TABLE_GDPR_REQUESTS!);
const keys = createSubjectKeyStore(loadSubjectKeyConfig(env), dynamo, () => {
  throw new Error('no KMS locally');
});
const sinks = readdirSync(sinkDir).sort().map(dirSink);
const processor = new ErasureProcessor({ store, keys, sinks, retry: { policy: { baseMs: 10, maxMs: 100 } } });
const done = await processor.run(env.GDPR_TEST_REQUEST_ID!);
process.stdout.write(`${JSON.stringify({ done: done.step })}\n`);
dynamo.destroy();

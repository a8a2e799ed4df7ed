// The consumers `taskflow replay` can feed: for each, its processor built from the service's own
// configuration (the same one `taskflow <service>` reads), minus what must not happen twice —
// notifications replayed fill the inbox but are not published again (a browser that missed them
// reads them from the inbox on reconnect).
import { createDynamoClient } from '../lib/aws.js';
import { consumerPreparation } from '../lib/consumer-reading.js';
import { deadLetterSink, type ShardProcessor } from '@taskflow/stream';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import type { Logger } from '../lib/logger.js';
import type { Env } from '../lib/config.js';
import type { OpenSearchIndex } from '../search/opensearch-index.js';
import type { SearchIndex } from '../search/search-index.js';
import { validateEvent } from '../schemas/validate.js';

export interface ReplayTarget {
  /** The consumer's lease name (its service's *_CONSUMER_NAME), for the progress file's name. */
  consumerName: string;
  processor(shardId: string): ShardProcessor;
  /**
   * Rebuild into a new index, then swap (search on OpenSearch only): after `begin` the processor
   * writes into the new index (given its name: that one again, resuming); after `promote` the
   * alias points there and the processor writes through it. Absent: the replay writes in place.
   */
  rebuild?: {
    begin(resume?: string): Promise<string>;
    /** Returns the indices the alias left (deleted unless `keepPrevious`). */
    promote(keepPrevious: boolean): Promise<string[]>;
  };
  close(): Promise<void>;
}

type Opener = (env: Env, logger: Logger) => Promise<ReplayTarget>;

const search: Opener = async (env, logger) => {
  const { loadConfig } = await import('../search/config.js');
  const { openSearchIndex } = await import('../search/engines.js');
  const { SearchShardProcessor } = await import('../search/shard-processor.js');
  const { SEARCH_DLQ_SOURCE } = await import('../search/redrive.js');
  const config = loadConfig(env);
  const live = await openSearchIndex(config.engine);
  // Where the processor writes: the live index (the alias), or a rebuild's new index until its promotion.
  let index: SearchIndex = live;
  let rebuilding: OpenSearchIndex | undefined;
  const dynamo = createDynamoClient(config.aws);
  const deadLetters = deadLetterSink(new DynamoDeadLetterStore(dynamo, config.dlqTable), SEARCH_DLQ_SOURCE, logger);
  // As the service does it: personal fields decrypted, and the erased-subjects list applied, so a
  // replay cannot bring an erased person's data back.
  const { decrypt, erased } = consumerPreparation(config.subjectKeys, dynamo, config.aws, () => undefined);
  return {
    consumerName: config.consumerName,
    ...(config.engine.kind === 'opensearch'
      ? {
          rebuild: {
            async begin(resume) {
              const os = live as OpenSearchIndex;
              rebuilding = resume ? await os.resumeRebuild(resume) : await os.beginRebuild();
              index = rebuilding;
              return rebuilding.writesTo;
            },
            async promote(keepPrevious) {
              if (!rebuilding) throw new Error('promote() before begin()');
              const left = await rebuilding.promote({ keepPrevious });
              index = live;
              return left;
            },
          },
        }
      : {}),
    processor: (shardId) => new SearchShardProcessor(shardId, { consumer: config.consumerName, index, deadLetters, validate: validateEvent, ...(decrypt ? { decrypt } : {}), ...(erased ? { erased } : {}) }),
    async close() {
      await live.close();
      dynamo.destroy();
    },
  };
};

const notifications: Opener = async (env, logger) => {
  const { loadConfig } = await import('../notifications/config.js');
  const { DynamoInbox } = await import('../notifications/inbox.js');
  const { DynamoWatcherStore } = await import('../notifications/watchers.js');
  const { DynamoMembershipProjection } = await import('../lib/dynamo-memberships.js');
  const { NotificationShardProcessor } = await import('../notifications/shard-processor.js');
  const { NOTIFICATIONS_DLQ_SOURCE } = await import('../notifications/redrive.js');
  const config = loadConfig(env);
  const dynamo = createDynamoClient(config.aws);
  const deps = {
    inbox: new DynamoInbox(dynamo, config.tables.inbox),
    watchers: new DynamoWatcherStore(dynamo, config.tables.watchers),
    memberships: new DynamoMembershipProjection(dynamo, config.tables.memberships),
    delivery: { deliver: () => Promise.resolve(0) },
  };
  const deadLetters = deadLetterSink(new DynamoDeadLetterStore(dynamo, config.tables.dlq), NOTIFICATIONS_DLQ_SOURCE, logger);
  // As for search.
  const { decrypt, erased } = consumerPreparation(config.subjectKeys, dynamo, config.aws, () => undefined);
  return {
    consumerName: config.consumerName,
    processor: (shardId) => new NotificationShardProcessor(shardId, { consumer: config.consumerName, ...deps, deadLetters, validate: validateEvent, ...(decrypt ? { decrypt } : {}), ...(erased ? { erased } : {}) }),
    close() {
      dynamo.destroy();
      return Promise.resolve();
    },
  };
};

export const REPLAY_TARGETS: Readonly<Record<string, Opener>> = { search, notifications };

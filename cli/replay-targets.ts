// The consumers `taskflow replay` can feed: for each, its processor built from the service's own
// configuration (the same one `taskflow <service>` reads), minus what must not happen twice —
// notifications replayed fill the inbox but are not published again (a browser that missed them
// reads them from the inbox on reconnect) — and, for the audit trail, what it holds already (its
// segments are create-once: a replay writes only the changes a gap lacks, audit/replay-writer.ts).
import { DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { createDynamoClient, createKinesisClient } from '../lib/aws.js';
import { consumerPreparation } from '../lib/consumer-reading.js';
import { deadLetterSink, type ShardProcessor } from '@taskflow/stream';
import { DynamoDeadLetterStore } from '../lib/dlq.js';
import type { Logger } from '../lib/logger.js';
import type { Env } from '../lib/config.js';
import type { ReplayWindow } from '../lib/replay.js';
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
  /** What the replay did besides handing events over (audit: recorded, already held, left to the live service). */
  summary?(): string;
  close(): Promise<void>;
}

type Opener = (env: Env, logger: Logger, window: ReplayWindow) => Promise<ReplayTarget>;

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

const audit: Opener = async (env, logger, window) => {
  const { loadConfig } = await import('../audit/config.js');
  const { openAuditStore } = await import('../audit/open-store.js');
  const { Pseudonymizer } = await import('../audit/record.js');
  const { AuditReplayWriter, readTrailIndex } = await import('../audit/replay-writer.js');
  const { auditDeadLetters } = await import('../audit/service.js');
  const { ErasedSubjects } = await import('@taskflow/stream');
  const { DynamoKeyTable, erasedSubjectLookup } = await import('../lib/subject-keys.js');
  const config = loadConfig(env);
  const store = openAuditStore(config.store, config.aws);
  const dynamo = createDynamoClient(config.aws);
  const kinesis = createKinesisClient(config.aws);
  // As the service does it: the same key (pseudonyms, digests; the trail decrypts nothing, it
  // digests the row images as they travel) and the erased-subjects list, so a replay writes no
  // identity mapping for an erased person.
  const erased = new ErasedSubjects({ lookup: erasedSubjectLookup(new DynamoKeyTable(dynamo, config.erasedSubjects.table)), ttlMs: config.erasedSubjects.ttlMs });
  const opened = Date.now();
  try {
    const retention = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: config.consumer.streamName }))).StreamDescriptionSummary?.RetentionPeriodHours ?? 24;
    const trail = await readTrailIndex(store, window);
    const counts = { recorded: 0, held: 0, live: 0 };
    const deps = {
      consumer: config.consumerName,
      store,
      trail,
      trimmedBefore: opened - retention * 3600_000,
      run: new Date(opened).toISOString().replace(/[-:.]/g, ''),
      deadLetters: auditDeadLetters(new DynamoDeadLetterStore(dynamo, config.dlqTable), logger),
      validate: validateEvent,
      pseudonyms: new Pseudonymizer(config.key),
      knownIdentities: new Set<string>(),
      erased,
      counts,
    };
    return {
      consumerName: config.consumerName,
      processor: (shardId) => new AuditReplayWriter(shardId, deps),
      summary: () => `audit: ${counts.recorded} changes recorded (missing from the trail), ${counts.held} already held, ${counts.live} left to the audit service (it has not read that far)`,
      close() {
        dynamo.destroy();
        kinesis.destroy();
        return Promise.resolve();
      },
    };
  } catch (err) {
    dynamo.destroy();
    kinesis.destroy();
    throw err;
  }
};

export const REPLAY_TARGETS: Readonly<Record<string, Opener>> = { search, notifications, audit };

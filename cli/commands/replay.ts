// `taskflow replay NAME --from T [--to T] [--workspace W]`: feeds one consumer's processor the
// events of a window again, from the stream's retention and, before it, from the raw archive
// (lib/replay.ts). Progress on stderr; stopped (Ctrl-C) or interrupted, the same command resumes.
import { DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { parseArgs } from 'node:util';
import { loadArchiveLocation } from '../../analytics/config.js';
import { DEV_AUDIT_KEY_FILE } from '../../audit/config.js';
import { DEVELOPMENT, ENV_VAR } from '../../lib/dev-mode.js';
import { archiveStore } from '../../analytics/loader-service.js';
import { createKinesisClient, loadAwsConfig } from '../../lib/aws.js';
import { TaskflowError } from '../../lib/errors.js';
import { listShards, loadConsumerConfig, PollingShardReader } from '@taskflow/stream';
import { createLogger } from '../../lib/logger.js';
import { ARRIVAL_GRACE_MS, type ArchiveSource, FileProgressStore, formatStatus, replay, sameReplay } from '../../lib/replay.js';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from '../command.js';
import { operatorEnvironment } from '../operator-env.js';
import { REPLAY_TARGETS } from '../replay-targets.js';

const usage = `usage:
  taskflow replay NAME --from TIME [--to TIME] [--workspace W] [--progress FILE] [--restart]
  taskflow replay search --rebuild [--keep-old] --from TIME [--progress FILE] [--restart]
      feeds consumer NAME's processor (${Object.keys(REPLAY_TARGETS).join(', ')}) every event committed
      between --from and --to (default: when the replay first started), of workspace W only
      (and the "*" events: truncates, erasures) with --workspace; TIME is ISO 8601 with a zone.
      Reads the stream from --from (GetShardIterator AT_TIMESTAMP) and, for the part of the window
      older than the stream's retention, the raw archive (ARCHIVE_BUCKET / ARCHIVE_PREFIX, or S3_DIR).
      The consumer's leases and checkpoints are not touched: the live service may keep running.
      Progress (rate, ETA) goes to stderr and into FILE (default .taskflow/replay-NAME.json) after
      every batch the processor checkpoints: the same command resumes there; --restart starts over.
      notifications: fills the inbox again (one per user and event), publishes nothing.
      audit: writes only the changes the trail lacks (its segments are create-once, Object Lock in
      production), into chains of their own (segments/replay-<run>-<source>/): a change already in
      a segment is skipped, and so is one the audit service has not read yet (it records that one
      itself). Run it after the service has moved past the window; a second run adds nothing.
      --rebuild (search on OpenSearch): replays into a new index <alias>-<build> while the live
      service keeps writing the alias, then moves the alias there in one atomic request, deletes
      the index it left (kept with --keep-old), and replays the changes committed meanwhile into
      it. --from must reach the start of the history. The SQLite index has no --rebuild: replay
      into a new SEARCH_DB_PATH and restart search on it (search/README.md).
Settings: the consumer's own (\`taskflow NAME --help\`), CHANGE_STREAM_NAME, KINESIS_MAX_RECORDS,
KINESIS_MIN_CALL_SPACING_MS (the replay shares the shards' 5 reads/s with every other reader),
and the AWS ones; the running local stack's when none is set (.taskflow/stack.json).`;

interface RebuildState {
  /** The new index the replay fills. */
  index: string;
  /** When the alias was moved to it. */
  promotedAt?: string;
  done?: boolean;
}

/** A small JSON file written atomically (a rename), as the progress file is. */
class JsonFile<T> {
  constructor(readonly path: string) {}
  async load(): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as T;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }
  async save(value: T): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await writeFile(`${this.path}.tmp`, JSON.stringify(value, null, 2));
    await rename(`${this.path}.tmp`, this.path);
  }
}

function instant(name: string, v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d))?$/.test(v) || Number.isNaN(Date.parse(v))) {
    throw new TaskflowError('BAD_ARGUMENT', `--${name} must be an ISO 8601 date or date-time with a zone, got "${v}"`);
  }
  return new Date(v);
}

export const command: Command = {
  summary: "replay the stream (and the raw archive before its retention) into one consumer's processor",
  async run(argv) {
    const { positionals, values } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean' }, from: { type: 'string' }, to: { type: 'string' }, workspace: { type: 'string' }, progress: { type: 'string' }, restart: { type: 'boolean' }, rebuild: { type: 'boolean' }, 'keep-old': { type: 'boolean' } },
      allowPositionals: true,
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const [name, ...extra] = positionals;
    const from = instant('from', values.from);
    if (!name || extra.length > 0 || !from) {
      console.error(usage);
      return 2;
    }
    const open = REPLAY_TARGETS[name];
    if (!open) throw new TaskflowError('BAD_ARGUMENT', `no replay for consumer "${name}" (known: ${Object.keys(REPLAY_TARGETS).join(', ')})`);
    if (values.rebuild && values.workspace) throw new TaskflowError('BAD_ARGUMENT', '--rebuild builds the whole index: it takes no --workspace');
    if (values['keep-old'] && !values.rebuild) throw new TaskflowError('BAD_ARGUMENT', '--keep-old is for --rebuild');
    // On the local stack the audit trail's development key, as `taskflow audit` takes it.
    const env = operatorEnvironment({ localDefaults: (info) => ({ SEARCH_DB_PATH: `${info.dataDir}/search/search.db`, ...(name === 'audit' ? { AUDIT_KEY_FILE: DEV_AUDIT_KEY_FILE, [ENV_VAR]: DEVELOPMENT } : {}) }) });
    const logger = createLogger('replay', env.LOG_LEVEL ?? 'warn');
    const to = instant('to', values.to);
    const progressStore = new FileProgressStore(values.progress ?? `.taskflow/replay-${name}.json`);
    const saved = values.restart ? undefined : await progressStore.load();
    if (saved && !sameReplay(saved, name, { from, ...(to ? { to } : {}), ...(values.workspace ? { workspace: values.workspace } : {}) })) {
      throw new TaskflowError('REPLAY_PROGRESS_MISMATCH', `${progressStore.path} holds another replay (${saved.consumer} from ${saved.from} to ${saved.to}${saved.workspace ? ` of ${saved.workspace}` : ''}): --restart to start this one over it, or --progress FILE`);
    }
    // A rebuild's own state beside the progress: its index, and whether the alias was moved.
    const rebuildFile = values.rebuild ? new JsonFile<RebuildState>(`${progressStore.path}.rebuild`) : undefined;
    let rebuildState = rebuildFile && !values.restart ? await rebuildFile.load() : undefined;
    if (rebuildState?.done) {
      process.stderr.write(`the rebuild in ${rebuildFile!.path} is done already (alias on ${rebuildState.index}); --restart to run it again\n`);
      return 0;
    }
    if (saved && !saved.done) process.stderr.write(`resuming the replay in ${progressStore.path} (${saved.events} events so far)\n`);
    if (saved?.done && !values.rebuild) {
      process.stderr.write(`the replay in ${progressStore.path} is done already (${saved.events} events); --restart to run it again\n`);
      return 0;
    }

    const consumer = loadConsumerConfig(env);
    const aws = loadAwsConfig(env);
    const kinesis = createKinesisClient(aws);
    const newReader = () => new PollingShardReader({ kinesis, streamName: consumer.streamName, maxRecords: consumer.maxRecords, idlePollMs: consumer.pollIntervalMs, minCallSpacingMs: consumer.minCallSpacingMs });
    const archive: ArchiveSource | undefined = env.ARCHIVE_BUCKET ? (() => {
      const location = loadArchiveLocation(env);
      return { store: archiveStore({ aws, archive: location }), prefix: location.prefix };
    })() : undefined;
    const windowTo = to ?? (saved ? new Date(saved.to) : new Date());
    const window = { from, to: windowTo, ...(values.workspace ? { workspace: values.workspace } : {}) };
    const target = await open(env, logger, window);
    if (values.rebuild && !target.rebuild) {
      await target.close();
      throw new TaskflowError('BAD_ARGUMENT', `--rebuild is for search on OpenSearch (SEARCH_ENGINE=opensearch); ${name === 'search' ? 'the SQLite index is rebuilt by replaying into a new SEARCH_DB_PATH and restarting search on it' : `${name} writes in place`}`);
    }
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let lastLine = 0;
    try {
      // One reader per pass (a rebuild's catch-up reads the shards again).
      const streamSource = (reader = newReader()) => ({
        listShards: () => listShards(kinesis, consumer.streamName),
        open: (shardId: string, position: Parameters<typeof reader.open>[1]) => reader.open(shardId, position),
        retentionHours: async () => (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: consumer.streamName }))).StreamDescriptionSummary?.RetentionPeriodHours ?? 24,
      });
      const onStatus = (s: Parameters<typeof formatStatus>[1]) => {
        if (Date.now() - lastLine < 1000) return;
        lastLine = Date.now();
        process.stderr.write(`${formatStatus(name, s)}\n`);
      };
      if (target.rebuild && !rebuildState?.promotedAt) {
        const index = await target.rebuild.begin(rebuildState?.index);
        if (!rebuildState) process.stderr.write(`rebuilding into the new index ${index}; the live service keeps writing the alias\n`);
        rebuildState = { index };
        await rebuildFile!.save(rebuildState);
      }
      const result =
        saved?.done || rebuildState?.promotedAt
          ? saved!
          : await replay({
              consumer: name,
              window,
              processor: (shardId) => target.processor(shardId),
              stream: streamSource(),
              ...(archive ? { archive } : {}),
              progress: values.restart ? { load: () => Promise.resolve(undefined), save: (p) => progressStore.save(p) } : progressStore,
              signal: abort.signal,
              onStatus,
            });
      if (result.done && target.rebuild && rebuildState) {
        let promotedAt = rebuildState.promotedAt;
        if (!promotedAt) {
          const left = await target.rebuild.promote(values['keep-old'] ?? false);
          promotedAt = new Date().toISOString();
          rebuildState = { ...rebuildState, promotedAt };
          await rebuildFile!.save(rebuildState);
          process.stderr.write(`alias moved to ${rebuildState.index}${left.length ? `; ${values['keep-old'] ? 'kept' : 'deleted'} ${left.join(', ')}` : ''}\n`);
        }
        // What the live service wrote to the old index after the window, until the swap: again,
        // into the new one, from a little before the window's end (writes are idempotent and
        // versioned, so overlapping the replay and the live service is harmless).
        const catchUp = await replay({
          consumer: name,
          window: { from: new Date(Date.parse(result.to) - ARRIVAL_GRACE_MS), to: new Date(promotedAt) },
          processor: (shardId) => target.processor(shardId),
          stream: streamSource(),
          progress: { load: () => Promise.resolve(undefined), save: () => Promise.resolve() },
          signal: abort.signal,
          onStatus,
        });
        if (!catchUp.done) {
          process.stderr.write(`rebuild stopped while catching up; run the same command again to finish it (${rebuildFile!.path})\n`);
          return 130;
        }
        await rebuildFile!.save({ ...rebuildState, done: true });
        process.stderr.write(`rebuild done: ${result.events} events replayed, ${catchUp.events} caught up after the swap\n`);
        return 0;
      }
      const shards = Object.keys(result.shards).length;
      if (target.summary) process.stderr.write(`${target.summary()}\n`);
      process.stderr.write(
        result.done
          ? `replay ${name} done: ${result.events} events from ${shards} shard(s)${result.archiveUntil ? ` and the archive up to ${result.archiveUntil}` : ''}\n`
          : `replay ${name} stopped after ${result.events} events; run the same command again to resume (${progressStore.path})\n`,
      );
      return result.done ? 0 : 130;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await target.close();
      kinesis.destroy();
    }
  },
};

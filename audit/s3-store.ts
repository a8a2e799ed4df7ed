// The audit trail's production store: S3. Create-once objects (segments, redrive marks, erasure
// proofs) go to a bucket with Object Lock, each written with its own retention in compliance mode
// (`ObjectLockMode: COMPLIANCE`, `ObjectLockRetainUntilDate` = now + AUDIT_RETENTION_DAYS), so
// not even the account root can delete or overwrite it before then; a conditional PUT
// (`If-None-Match: *`) makes the create atomic — a second writer of the same key gets 412 and
// reloads the head (store.ts). Object Lock requires an integrity checksum on every PUT: SHA-256
// (`x-amz-checksum-sha256`). The identity mapping (`identities/`) is mutable and erasure deletes
// it, so it lives in a bucket without Object Lock.
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { TaskflowError } from '../lib/errors.js';
import { type AuditStore, checkKey, isMutableKey, MUTABLE_PREFIX } from './store.js';

export interface S3AuditStoreOptions {
  /** Bucket with Object Lock enabled: every create-once object. */
  lockedBucket: string;
  /** Bucket without Object Lock: the identity mapping. */
  mutableBucket: string;
  /** Days each created object stays locked (compliance mode). */
  retentionDays: number;
  now?: () => Date;
}

const DAY_MS = 24 * 3600 * 1000;

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export class S3AuditStore implements AuditStore {
  private readonly now: () => Date;

  constructor(
    private readonly client: S3Client,
    readonly options: S3AuditStoreOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  private bucketOf(key: string): string {
    return isMutableKey(key) ? this.options.mutableBucket : this.options.lockedBucket;
  }

  async create(key: string, body: Uint8Array): Promise<boolean> {
    checkKey(key);
    if (isMutableKey(key)) throw new TaskflowError('AUDIT_KEY_INVALID', `"${key}" is a mutable object (${MUTABLE_PREFIX}): put it, do not create it`);
    const Bucket = this.options.lockedBucket;
    // A writer that lost a key usually retries it after the other wrote it: answered without a
    // write. This also keeps the adapter create-once on S3 APIs that ignore If-None-Match (s3rver);
    // on S3 the conditional PUT below is what makes it atomic.
    if (await this.exists(Bucket, key)) return false;
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket,
          Key: key,
          Body: body,
          ContentType: 'application/octet-stream',
          IfNoneMatch: '*',
          ObjectLockMode: 'COMPLIANCE',
          ObjectLockRetainUntilDate: new Date(this.now().getTime() + this.options.retentionDays * DAY_MS),
          ChecksumAlgorithm: 'SHA256',
        }),
      );
      return true;
    } catch (err) {
      // 412: the key exists. (409, a concurrent conditional write in progress, is thrown: the writer retries.)
      if (statusOf(err) === 412) return false;
      throw err;
    }
  }

  private async exists(Bucket: string, Key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket, Key }));
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    checkKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucketOf(key), Key: key }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
    } catch (err) {
      if (statusOf(err) === 404 || (err as { name?: string }).name === 'NoSuchKey') return undefined;
      throw err;
    }
  }

  async list(prefix: string, startAfter = ''): Promise<string[]> {
    // A prefix reaching both (only '' or a proper prefix of 'identities/') lists both buckets; one
    // under 'identities/' (the erasure sink's) only the identity bucket, the one the gdpr
    // processor's role may list.
    const buckets = !isMutableKey(prefix) && MUTABLE_PREFIX.startsWith(prefix) ? [this.options.lockedBucket, this.options.mutableBucket] : [this.bucketOf(prefix)];
    const keys: string[] = [];
    for (const Bucket of buckets) {
      let ContinuationToken: string | undefined;
      do {
        const out = await this.client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ...(startAfter ? { StartAfter: startAfter } : {}), ...(ContinuationToken ? { ContinuationToken } : {}) }));
        for (const o of out.Contents ?? []) if (o.Key && this.bucketOf(o.Key) === Bucket) keys.push(o.Key);
        ContinuationToken = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (ContinuationToken);
    }
    // S3 lists in UTF-8 byte order; keys here are ASCII, where that is string order.
    return keys.sort();
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    checkKey(key);
    if (!isMutableKey(key)) throw new TaskflowError('AUDIT_KEY_INVALID', `"${key}" is create-once (Object Lock): only ${MUTABLE_PREFIX} objects are overwritten`);
    await this.client.send(new PutObjectCommand({ Bucket: this.options.mutableBucket, Key: key, Body: body, ContentType: 'application/json' }));
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    if (!isMutableKey(key)) throw new TaskflowError('AUDIT_KEY_INVALID', `"${key}" is create-once (Object Lock): only ${MUTABLE_PREFIX} objects are deleted`);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.mutableBucket, Key: key }));
  }
}

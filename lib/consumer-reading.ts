// How a consumer that reads personal text (search, notifications) prepares events before applying
// them — the same for its live path and its dead-letter redrive: personal fields decrypted through
// a cached key store, and erased subjects' data blanked through the erased-subjects list (the
// subject-keys table's tombstones). Without subject keys configured, neither is done.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ErasedSubjects, type EventPreparation } from '@taskflow/stream';
import { type AwsConfig, createKmsClient } from './aws.js';
import { type OnUnreadable, readerKeyStore, streamEventDecryptor } from './field-crypto.js';
import type { SubjectKeyConfig } from './subject-keys.js';

export function consumerPreparation(subjectKeys: SubjectKeyConfig | undefined, dynamo: DynamoDBClient, aws: AwsConfig, onUnreadable: OnUnreadable): EventPreparation {
  if (!subjectKeys) return {};
  const keys = readerKeyStore(subjectKeys, dynamo, () => createKmsClient(aws));
  return {
    decrypt: streamEventDecryptor(keys, onUnreadable),
    erased: new ErasedSubjects({ lookup: (subject) => keys.isDestroyed(subject), ttlMs: subjectKeys.cache.ttlMs }),
  };
}

// The archiver's port to Firehose and its adapter on @aws-sdk/client-firehose.
import { type FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { type CallOutcome, THROTTLED } from './delivery-plan.js';

/** What Firehose answers a call beyond its limits with (a record's size, the count, the total). */
const SIZE_REFUSALS = new Set(['ValidationException', 'InvalidArgumentException']);

export interface DeliveryStreamPort {
  /** One PutRecordBatch call; a throttled or refused (limits) call is an outcome, any other failure throws. */
  putRecordBatch(records: readonly Uint8Array[]): Promise<CallOutcome>;
}

export class FirehoseDeliveryStream implements DeliveryStreamPort {
  constructor(
    private readonly client: FirehoseClient,
    readonly name: string,
  ) {}

  async putRecordBatch(records: readonly Uint8Array[]): Promise<CallOutcome> {
    try {
      const out = await this.client.send(new PutRecordBatchCommand({ DeliveryStreamName: this.name, Records: records.map((Data) => ({ Data })) }));
      const responses = out.RequestResponses ?? [];
      if (responses.length !== records.length) throw new Error(`PutRecordBatch answered ${responses.length} responses for ${records.length} records`);
      return { kind: 'answered', errors: responses.map((r) => r.ErrorCode ?? undefined) };
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name === THROTTLED) return { kind: 'throttled' };
      if (name !== undefined && SIZE_REFUSALS.has(name)) return { kind: 'refused', message: `${name}: ${(err as Error).message}` };
      throw err;
    }
  }
}

// One DynamoDB JSON request signed and sent on an SDK client's own transport (its socket pool,
// credentials, region, endpoint and clock-skew offset), past the SDK's middleware stack: in the
// router's hot path (a conditional PutItem per project batch) that stack — endpoint rules,
// retry strategy, schema serde, user agent, per-request config copies — cost ≈ 2.5x the CPU of
// the request itself (≈ 550 vs 220 µs per PutItem, test/bench/README.md "e2e"). One attempt
// only: the caller sends anything but success or the expected refusal through the SDK, whose
// retries, error types and clock-skew correction then apply.
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import { countAwsRequest } from './aws.js';

/** Success (the response body parsed), DynamoDB's error type (e.g. ConditionalCheckFailedException), or nothing usable (transport error, 5xx, throttling, an unreadable answer). */
export type DirectOutcome = { ok: true; output: Record<string, unknown> } | { ok: false; errorType: string | null };

interface Transport {
  signer: SignatureV4;
  url: URL;
  handle(request: unknown): Promise<{ response: { statusCode: number; body: AsyncIterable<Uint8Array> } }>;
  clockOffsetMs(): number;
}

/** What this module reads of the SDK client's resolved config (present on every v3 client). */
interface ResolvedConfig {
  isCustomEndpoint?: boolean;
  endpoint?: () => Promise<{ protocol: string; hostname: string; port?: number; path: string }>;
  endpointProvider(params: Record<string, unknown>): { url: URL };
  region(): Promise<string>;
  useFipsEndpoint(): Promise<boolean>;
  useDualstackEndpoint(): Promise<boolean>;
  credentials: ConstructorParameters<typeof SignatureV4>[0]['credentials'];
  sha256: ConstructorParameters<typeof SignatureV4>[0]['sha256'];
  systemClockOffset?: number;
  requestHandler: { handle: Transport['handle'] };
}

export class DirectDynamo {
  private transport: Promise<Transport> | undefined;

  constructor(private readonly client: DynamoDBClient) {}

  async send(operation: string, input: Record<string, unknown>): Promise<DirectOutcome> {
    let t: Transport;
    try {
      t = await (this.transport ??= this.resolve());
    } catch {
      this.transport = undefined;
      return { ok: false, errorType: null };
    }
    const body = JSON.stringify(input);
    countAwsRequest('dynamodb', `${operation}Command`);
    try {
      const request = {
        method: 'POST',
        protocol: t.url.protocol,
        hostname: t.url.hostname,
        ...(t.url.port ? { port: Number(t.url.port) } : {}),
        path: t.url.pathname,
        query: {},
        headers: {
          host: t.url.host,
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `DynamoDB_20120810.${operation}`,
          'content-length': String(Buffer.byteLength(body)),
        },
        body,
      };
      const signed = await t.signer.sign(request, { signingDate: new Date(Date.now() + t.clockOffsetMs()) });
      const { response } = await t.handle(signed);
      const chunks: Uint8Array[] = [];
      for await (const chunk of response.body) chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('utf8');
      const parsed = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      if (response.statusCode === 200) return { ok: true, output: parsed };
      // 4xx answers name their type ("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException").
      const type = typeof parsed.__type === 'string' && response.statusCode < 500 ? (parsed.__type.split('#').pop() ?? null) : null;
      return { ok: false, errorType: type };
    } catch {
      return { ok: false, errorType: null };
    }
  }

  private async resolve(): Promise<Transport> {
    const cfg = this.client.config as unknown as ResolvedConfig;
    const region = await cfg.region();
    const custom = cfg.isCustomEndpoint && cfg.endpoint ? await cfg.endpoint() : undefined;
    // The client's own endpoint rules (partition, FIPS, dual-stack, a local engine's URL); the
    // regional endpoint, not an account-based one (the account id is not known here).
    const { url } = cfg.endpointProvider({
      Region: region,
      UseFIPS: await cfg.useFipsEndpoint(),
      UseDualStack: await cfg.useDualstackEndpoint(),
      AccountIdEndpointMode: 'disabled',
      ...(custom ? { Endpoint: `${custom.protocol}//${custom.hostname}${custom.port ? `:${custom.port}` : ''}${custom.path}` } : {}),
    });
    return {
      signer: new SignatureV4({ service: 'dynamodb', region, credentials: cfg.credentials, sha256: cfg.sha256 }),
      url: new URL(url),
      handle: (request) => cfg.requestHandler.handle(request),
      clockOffsetMs: () => cfg.systemClockOffset ?? 0,
    };
  }
}

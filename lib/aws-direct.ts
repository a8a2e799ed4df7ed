// One AWS JSON-protocol request (DynamoDB, Kinesis) signed and sent on an SDK client's own
// transport (its socket pool, credentials, region, endpoint rules and clock-skew offset), past
// the SDK's middleware stack: in the router's hot paths (a conditional PutItem per project
// batch, GetRecords per shard read) that stack — endpoint rules, retry strategy, schema serde
// (a regular expression over every base64 blob), user agent, per-request config copies — cost
// ≈ 2.5x the CPU of the request itself (≈ 550 vs 220 µs per PutItem, test/bench/README.md
// "e2e"). One attempt only: callers send anything but success or an error they expect through
// the SDK, whose retries, error types and clock-skew correction then apply.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import { countAwsRequest } from './aws.js';

/** Success (the response body parsed), or the service's error type (null: a transport error, 5xx, an unreadable answer). */
export type DirectOutcome = { ok: true; output: Record<string, unknown> } | { ok: false; errorType: string | null; message: string };

export interface DirectApi {
  /** Name in the request counts (lib/aws.ts awsRequestCounts). */
  api: string;
  signingName: string;
  targetPrefix: string;
  contentType: string;
  /** Endpoint rule parameters beyond region, FIPS, dual-stack and a custom endpoint. */
  endpointParams: Record<string, unknown>;
}

/** The regional endpoint, not an account-based one (the account id is not known here). */
export const DYNAMODB_JSON: DirectApi = { api: 'dynamodb', signingName: 'dynamodb', targetPrefix: 'DynamoDB_20120810', contentType: 'application/x-amz-json-1.0', endpointParams: { AccountIdEndpointMode: 'disabled' } };
/** Without a stream ARN Kinesis' rules give the regional endpoint, as for the SDK's GetRecords by iterator. */
export const KINESIS_JSON: DirectApi = { api: 'kinesis', signingName: 'kinesis', targetPrefix: 'Kinesis_20131202', contentType: 'application/x-amz-json-1.1', endpointParams: { OperationType: 'data' } };

interface Transport {
  signer: SignatureV4;
  url: URL;
  handle(request: unknown, options: { abortSignal?: AbortSignal }): Promise<{ response: { statusCode: number; body: AsyncIterable<Uint8Array> } }>;
  clockOffsetMs(): number;
}

/** What this module reads of an SDK v3 client's resolved config. */
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

export class DirectAwsJson {
  private transport: Promise<Transport> | undefined;

  private constructor(
    private readonly config: ResolvedConfig,
    private readonly api: DirectApi,
  ) {}

  /** Undefined for a client that is not an SDK v3 client (a test's scripted stand-in): then the caller uses its send. */
  static of(client: unknown, api: DirectApi): DirectAwsJson | undefined {
    const config = (client as { config?: Partial<ResolvedConfig> }).config;
    return config && typeof config.endpointProvider === 'function' && typeof config.requestHandler?.handle === 'function' ? new DirectAwsJson(config as ResolvedConfig, api) : undefined;
  }

  async send(operation: string, input: Record<string, unknown>, abortSignal?: AbortSignal): Promise<DirectOutcome> {
    let t: Transport;
    try {
      t = await (this.transport ??= this.resolve());
    } catch (err) {
      this.transport = undefined;
      return { ok: false, errorType: null, message: (err as Error).message };
    }
    // Bytes once: the signer hashes them and the socket writes them without converting the string again.
    const body = Buffer.from(JSON.stringify(input));
    countAwsRequest(this.api.api, `${operation}Command`);
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
          'content-type': this.api.contentType,
          'x-amz-target': `${this.api.targetPrefix}.${operation}`,
          'content-length': String(body.length),
        },
        body,
      };
      const signed = await t.signer.sign(request, { signingDate: new Date(Date.now() + t.clockOffsetMs()) });
      const { response } = await t.handle(signed, abortSignal ? { abortSignal } : {});
      const chunks: Uint8Array[] = [];
      for await (const chunk of response.body) chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('utf8');
      const parsed = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      if (response.statusCode === 200) return { ok: true, output: parsed };
      // 4xx answers name their type ("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException").
      const type = typeof parsed.__type === 'string' && response.statusCode < 500 ? (parsed.__type.split('#').pop() ?? null) : null;
      return { ok: false, errorType: type, message: String(parsed.message ?? parsed.Message ?? `HTTP ${response.statusCode}`) };
    } catch (err) {
      return { ok: false, errorType: null, message: (err as Error).message };
    }
  }

  private async resolve(): Promise<Transport> {
    const cfg = this.config;
    const region = await cfg.region();
    const custom = cfg.isCustomEndpoint && cfg.endpoint ? await cfg.endpoint() : undefined;
    // The client's own endpoint rules: partition, FIPS, dual-stack, or a local engine's URL.
    const { url } = cfg.endpointProvider({
      Region: region,
      UseFIPS: await cfg.useFipsEndpoint(),
      UseDualStack: await cfg.useDualstackEndpoint(),
      ...this.api.endpointParams,
      ...(custom ? { Endpoint: `${custom.protocol}//${custom.hostname}${custom.port ? `:${custom.port}` : ''}${custom.path}` } : {}),
    });
    return {
      signer: new SignatureV4({ service: this.api.signingName, region, credentials: cfg.credentials, sha256: cfg.sha256 }),
      url: new URL(url),
      handle: (request, options) => cfg.requestHandler.handle(request, options),
      clockOffsetMs: () => cfg.systemClockOffset ?? 0,
    };
  }
}

/**
 * A conditional DynamoDB write (PutItem, DeleteItem) that returns nothing: sent directly first,
 * `input` in DynamoDB JSON (blobs base64); true once written, false when the condition refused it.
 * Anything else is sent again through the SDK (`viaSdk`, whose ConditionalCheckFailedException
 * also answers false), as the SDK's own retries would send it: a direct attempt that did write
 * is then refused, so a caller whose condition its own write breaks tells its item from another's
 * (the changelog does; a lease write refused so is a lost lease, as after an SDK retry).
 */
export async function conditionalWrite(direct: DirectAwsJson | undefined, operation: 'PutItem' | 'DeleteItem', input: Record<string, unknown>, viaSdk: () => Promise<unknown>): Promise<boolean> {
  const outcome = await direct?.send(operation, input);
  if (outcome?.ok) return true;
  if (outcome?.errorType === 'ConditionalCheckFailedException') return false;
  try {
    await viaSdk();
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return false;
    throw err;
  }
}

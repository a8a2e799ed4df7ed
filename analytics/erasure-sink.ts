// The warehouse's erasure sinks (gdpr/POLICY.md `warehouse-raw`, `warehouse-curated`). DuckDB has
// one process per file and the loader holds it, so these steps do not open the warehouse: they
// ask the loader to purge and scan it (analytics/erasure-api.ts, the loader's internal endpoint;
// warehouse/erasure.ts says what a purge does). The same steps reach Snowflake through the
// production loader's endpoint (SnowflakeWarehouse implements the same erase/holding).
import { readFileSync } from 'node:fs';
import { type Env, optionalSetting, readSettings, urlSetting } from '../lib/config.js';
import { type ErasureSink, type SinkSteps, bindSink, type SubjectIdentifiers } from '../lib/erasure.js';
import { TaskflowError } from '../lib/errors.js';
import { loadJwtConfig, signDevToken } from '../lib/jwt.js';
import { GDPR_SERVICE_USER } from './erasure-api.js';
import type { WarehouseSink } from './warehouse/erasure.js';

export const WAREHOUSE_ERASURE_SETTINGS = {
  url: urlSetting({ name: 'WAREHOUSE_ERASURE_URL', meaning: "The analytics loader's internal erasure endpoint (its LOADER_ERASURE_PORT; taskflow dev gives it to gdpr)." }),
  tokenFile: optionalSetting({
    name: 'WAREHOUSE_ERASURE_TOKEN_FILE',
    default: 'unset: a token signed with the HS256 JWT secret',
    meaning: "A file holding gdpr's service JWT (subject service:gdpr) for the loader's erasure endpoint, read at every call so a rotated token is picked up (production: issued by the identity provider).",
  }),
};

/** Calls the loader's erasure endpoint for one sink and step. */
export interface WarehouseErasureClient {
  call<T>(sink: WarehouseSink, step: 'purge' | 'scan', ids: SubjectIdentifiers): Promise<T>;
}

export function httpErasureClient(url: string, token: () => Promise<string>): WarehouseErasureClient {
  return {
    async call<T>(sink: WarehouseSink, step: 'purge' | 'scan', ids: SubjectIdentifiers): Promise<T> {
      let res: Response;
      try {
        res = await fetch(new URL(`/internal/erasure/${sink}/${step}`, url), {
          method: 'POST',
          headers: { authorization: `Bearer ${await token()}`, 'content-type': 'application/json' },
          body: JSON.stringify(ids),
        });
      } catch (err) {
        throw new TaskflowError('WAREHOUSE_ERASURE_UNREACHABLE', `${sink}: the loader's erasure endpoint ${url} did not answer (${(err as Error).message}); is the analytics loader running?`, { retriable: true, cause: err });
      }
      const body = (await res.json().catch(() => ({}))) as T & { error?: string; message?: string };
      if (!res.ok) throw new TaskflowError('WAREHOUSE_ERASURE_FAILED', `${sink} ${step}: the loader answered ${res.status} ${body.error ?? ''} ${body.message ?? ''}`.trim(), { retriable: res.status >= 500 });
      return body;
    },
  };
}

const steps = (sink: WarehouseSink): SinkSteps<WarehouseErasureClient> => ({
  sink,
  async purge(client, ids, onProgress) {
    const result = await client.call<{ changed: number }>(sink, 'purge', ids);
    onProgress?.(result.changed);
    return { changed: result.changed };
  },
  async scan(client, ids) {
    const { scanned, found } = await client.call<{ scanned: number; found: number }>(sink, 'scan', ids);
    return { scanned, found };
  },
});

export const WAREHOUSE_RAW_SINK = steps('warehouse-raw');
export const WAREHOUSE_CURATED_SINK = steps('warehouse-curated');
export const ERASURE_SINKS = [WAREHOUSE_RAW_SINK, WAREHOUSE_CURATED_SINK] as const;

/** gdpr's token for the endpoint: the token file, or one signed for the call with the HS256 secret (development, or JWT_SECRET). */
function tokenSource(env: Env, tokenFile: string | undefined): () => Promise<string> {
  if (tokenFile) return () => Promise.resolve(readFileSync(tokenFile, 'utf8').trim());
  const jwt = loadJwtConfig(env);
  if (jwt.kind !== 'hs256') throw new TaskflowError('GDPR_SINK_UNCONFIGURED', 'warehouse: JWT_JWKS_URL is set, so the loader verifies RS256 tokens; WAREHOUSE_ERASURE_TOKEN_FILE must hold gdpr\'s service token');
  return () => signDevToken(jwt.secret, GDPR_SERVICE_USER, { ttlSeconds: 300, issuer: jwt.issuer, audience: jwt.audience });
}

export async function openErasureSinks(env: Env): Promise<{ sinks: ErasureSink[]; close(): Promise<void> }> {
  if (!env.WAREHOUSE_ERASURE_URL) {
    throw new TaskflowError('GDPR_SINK_UNCONFIGURED', "warehouse-raw, warehouse-curated: WAREHOUSE_ERASURE_URL is not set; the processor purges the warehouse through the analytics loader's erasure endpoint (the loader's LOADER_ERASURE_PORT)");
  }
  const s = readSettings(env, WAREHOUSE_ERASURE_SETTINGS);
  const client = httpErasureClient(s.url, tokenSource(env, s.tokenFile));
  return { sinks: [bindSink(WAREHOUSE_RAW_SINK, client), bindSink(WAREHOUSE_CURATED_SINK, client)], close: () => Promise.resolve() };
}

// The loader's internal erasure endpoint (gdpr/POLICY.md `warehouse-raw`, `warehouse-curated`).
// DuckDB allows one process per database file and the loader holds it, so the purge runs here, in
// the loader's own queue of warehouse operations (between two load batches, never inside one); the
// gdpr processor's sink (analytics/erasure-sink.ts) calls it:
//   POST /internal/erasure/{warehouse-raw|warehouse-curated}/{purge|scan}   body: SubjectIdentifiers
//   → 200 {changed} | {scanned, found}
// Only the gdpr processor may call it: a bearer JWT verified with the loader's JWT_* settings whose
// subject is `service:gdpr`. It listens on its own port (LOADER_ERASURE_PORT), never on the
// board-facing analytics API: the body carries the person's identifiers, and a purge of a large
// warehouse runs longer than the API's request limits.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { SubjectIdentifiers } from '../lib/erasure.js';
import type { TokenVerifier } from '../lib/jwt.js';
import type { Logger } from '../lib/logger.js';
import { type ErasableWarehouse, WAREHOUSE_SINKS, type WarehouseSink } from './warehouse/erasure.js';

/** The service identity the endpoint accepts (taskflow dev signs its token; production: the identity provider). */
export const GDPR_SERVICE_USER = 'service:gdpr';

/** A subject's identifiers include the plaintext of everything they wrote: allow a large body. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

const ROUTE = /^\/internal\/erasure\/([a-z-]+)\/(purge|scan)$/;

/** The body as SubjectIdentifiers, or why not. */
export function parseIdentifiers(body: unknown): SubjectIdentifiers | string {
  const b = body as Partial<SubjectIdentifiers> | null;
  if (!b || typeof b !== 'object') return 'the body must be a JSON object';
  if (typeof b.subject !== 'string' || b.subject === '') return 'subject must be a non-empty string';
  if (b.email !== null && typeof b.email !== 'string') return 'email must be a string or null';
  if (b.displayName !== null && typeof b.displayName !== 'string') return 'displayName must be a string or null';
  if (!Array.isArray(b.authored) || !b.authored.every((a) => a && (a.table === 'tasks' || a.table === 'comments') && typeof a.id === 'string' && typeof a.text === 'string')) {
    return 'authored must be a list of {table: tasks|comments, id, text}';
  }
  return { subject: b.subject, email: b.email, displayName: b.displayName, authored: b.authored };
}

export function createErasureHandler(deps: { warehouse: ErasableWarehouse; verify: TokenVerifier; logger: Logger }): (req: IncomingMessage, res: ServerResponse) => void {
  const answer = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  return (req, res) => {
    void (async () => {
      const m = ROUTE.exec(new URL(req.url ?? '/', 'http://loader').pathname);
      if (!m || !WAREHOUSE_SINKS.includes(m[1] as WarehouseSink)) return answer(res, 404, { error: 'not_found' });
      if (req.method !== 'POST') return answer(res, 405, { error: 'method_not_allowed' });
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const caller = token ? await deps.verify(token).catch(() => undefined) : undefined;
      if (!caller) return answer(res, 401, { error: 'unauthenticated' });
      if (caller.userId !== GDPR_SERVICE_USER) return answer(res, 403, { error: 'forbidden', message: `only ${GDPR_SERVICE_USER} may erase` });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) return answer(res, 413, { error: 'too_large' });
        chunks.push(chunk);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return answer(res, 400, { error: 'bad_request', message: 'the body is not JSON' });
      }
      const ids = parseIdentifiers(parsed);
      if (typeof ids === 'string') return answer(res, 400, { error: 'bad_request', message: ids });
      const sink = m[1] as WarehouseSink;
      const started = performance.now();
      const result = m[2] === 'purge' ? await deps.warehouse.erase(sink, ids) : await deps.warehouse.holding(sink, ids);
      // The subject id only: the other identifiers are personal data and stay out of the logs.
      deps.logger.info({ sink, step: m[2], subject: ids.subject, ...result, seconds: (performance.now() - started) / 1000 }, 'warehouse erasure step');
      return answer(res, 200, result);
    })().catch((err: unknown) => {
      deps.logger.error({ err }, 'warehouse erasure step failed');
      if (!res.headersSent) answer(res, 500, { error: 'internal', message: (err as Error).message });
      else res.destroy();
    });
  };
}

export async function startErasureServer(handler: (req: IncomingMessage, res: ServerResponse) => void, port: number, host: string): Promise<{ server: Server; url: string }> {
  // No request timeout: a purge of a large warehouse is one long request (the client retries a cut one; the purge is idempotent).
  const server = createServer({ requestTimeout: 0 }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return { server, url: `http://${host}:${typeof address === 'object' && address ? address.port : port}` };
}

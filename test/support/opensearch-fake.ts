// A recording stand-in for OpenSearch: a local HTTP server that answers the REST calls the search
// service's adapter makes (indices and aliases, _bulk with external versioning, _mget, _search,
// _delete_by_query) the way OpenSearch does, over the part of the query DSL the adapter uses,
// and records every request so tests can check what went over the wire. Never a real cluster.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** Parsed JSON, or for _bulk the parsed NDJSON lines. */
  body: unknown;
}

interface StoredDoc {
  source: Record<string, unknown>;
  version: number;
  routing?: string;
}

type Query = Record<string, unknown>;

export interface OpenSearchFake {
  url: string;
  requests: RecordedRequest[];
  /** Concrete index name → its documents by id. */
  indices: Map<string, Map<string, StoredDoc>>;
  aliases: Map<string, Set<string>>;
  /** Concrete index name → the top-level fields its mappings declare, when they are `dynamic: strict`. */
  strictFields: Map<string, Set<string>>;
  stop(): Promise<void>;
}

const tokens = (text: unknown): string[] => (typeof text === 'string' ? (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) : []);

/** Numbers by value, everything else as strings by code unit (OpenSearch orders keywords by bytes). */
function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = String(a ?? '');
  const y = String(b ?? '');
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Whether `source` matches `query`, and its score. */
function evaluate(query: Query, source: Record<string, unknown>): { match: boolean; score: number } {
  const [kind, arg] = Object.entries(query)[0] ?? ['match_all', {}];
  const spec = arg as Record<string, unknown>;
  switch (kind) {
    case 'match_all':
      return { match: true, score: 1 };
    case 'term': {
      const [field, value] = Object.entries(spec)[0]!;
      // An array field matches when one of its values does.
      const v = source[field];
      return { match: Array.isArray(v) ? v.includes(value) : v === value, score: 0 };
    }
    case 'terms': {
      const [field, values] = Object.entries(spec)[0]!;
      return { match: (values as unknown[]).includes(source[field]), score: 0 };
    }
    case 'range': {
      const [field, bounds] = Object.entries(spec)[0]! as [string, Record<string, unknown>];
      const v = source[field];
      if (v === undefined || v === null) return { match: false, score: 0 };
      const ok =
        (bounds.gt === undefined || compare(v, bounds.gt) > 0) &&
        (bounds.gte === undefined || compare(v, bounds.gte) >= 0) &&
        (bounds.lt === undefined || compare(v, bounds.lt) < 0) &&
        (bounds.lte === undefined || compare(v, bounds.lte) <= 0);
      return { match: ok, score: 0 };
    }
    case 'multi_match': {
      if (spec.type !== 'phrase_prefix') throw new Error(`fake OpenSearch: multi_match type ${String(spec.type)} not supported`);
      const words = tokens(spec.query);
      let score = 0;
      for (const f of spec.fields as string[]) {
        const [field, boost] = f.split('^') as [string, string | undefined];
        const fieldTokens = tokens(source[field]);
        // A single-word phrase prefix: some token starts with it (the adapter sends one word each).
        if (words.length === 1 && fieldTokens.some((t) => t.startsWith(words[0]!))) score += Number(boost ?? 1);
      }
      return { match: score > 0, score };
    }
    case 'bool': {
      const filter = (spec.filter as Query[] | undefined) ?? [];
      const must = (spec.must as Query[] | undefined) ?? [];
      const should = (spec.should as Query[] | undefined) ?? [];
      let score = 0;
      for (const q of [...filter, ...must]) {
        const r = evaluate(q, source);
        if (!r.match) return { match: false, score: 0 };
        score += must.includes(q) ? r.score : 0;
      }
      const minimum = (spec.minimum_should_match as number | undefined) ?? (filter.length + must.length === 0 ? 1 : 0);
      const matchedShould = should.map((q) => evaluate(q, source)).filter((r) => r.match);
      if (matchedShould.length < minimum) return { match: false, score: 0 };
      return { match: true, score: score + matchedShould.reduce((n, r) => n + r.score, 0) };
    }
    default:
      throw new Error(`fake OpenSearch: query ${kind} not supported`);
  }
}

export async function startOpenSearchFake(): Promise<OpenSearchFake> {
  const requests: RecordedRequest[] = [];
  const indices = new Map<string, Map<string, StoredDoc>>();
  const aliases = new Map<string, Set<string>>();
  const strictFields = new Map<string, Set<string>>();

  /** A name → its concrete indices (an alias may name several). */
  const resolve = (name: string): string[] => (indices.has(name) ? [name] : [...(aliases.get(name) ?? [])]);
  const writeTarget = (name: string): Map<string, StoredDoc> | undefined => {
    const names = resolve(name);
    return names.length === 1 ? indices.get(names[0]!) : undefined;
  };

  function bulk(lines: Record<string, unknown>[]): unknown {
    const items: unknown[] = [];
    for (let i = 0; i < lines.length; i += 2) {
      const action = lines[i]!;
      const meta = action.index as { _index: string; _id: string; version?: number; version_type?: string; routing?: string } | undefined;
      if (!meta) throw new Error(`fake OpenSearch: bulk action ${Object.keys(action)[0]} not supported`);
      const docs = writeTarget(meta._index);
      if (!docs) {
        items.push({ index: { _index: meta._index, _id: meta._id, status: 404, error: { type: 'index_not_found_exception', reason: `no such index [${meta._index}]` } } });
        continue;
      }
      const current = docs.get(meta._id);
      const version = meta.version ?? (current ? current.version + 1 : 1);
      const accepted =
        meta.version_type === 'external' ? !current || version > current.version : meta.version_type === 'external_gte' ? !current || version >= current.version : true;
      if (!accepted) {
        items.push({
          index: {
            _index: meta._index,
            _id: meta._id,
            status: 409,
            error: { type: 'version_conflict_engine_exception', reason: `[${meta._id}]: version conflict, current version [${current!.version}] is higher than the one provided [${version}]` },
          },
        });
        continue;
      }
      const strict = strictFields.get(resolve(meta._index)[0]!);
      const unknown = strict ? Object.keys(lines[i + 1]!).find((f) => !strict.has(f)) : undefined;
      if (unknown !== undefined) {
        items.push({ index: { _index: meta._index, _id: meta._id, status: 400, error: { type: 'strict_dynamic_mapping_exception', reason: `mapping set to strict, dynamic introduction of [${unknown}] within [_doc] is not allowed` } } });
        continue;
      }
      docs.set(meta._id, { source: lines[i + 1]!, version, ...(meta.routing ? { routing: meta.routing } : {}) });
      items.push({ index: { _index: meta._index, _id: meta._id, _version: version, status: current ? 200 : 201, result: current ? 'updated' : 'created' } });
    }
    return { took: 1, errors: items.some((it) => ((it as { index: { status: number } }).index.status ?? 0) >= 300), items };
  }

  function search(name: string, body: Query, routing: string | undefined): unknown {
    const matched: { _index: string; _id: string; _score: number; _source: Record<string, unknown> }[] = [];
    for (const index of resolve(name)) {
      for (const [id, doc] of indices.get(index) ?? []) {
        if (routing !== undefined && doc.routing !== undefined && doc.routing !== routing) continue;
        const r = evaluate((body.query as Query | undefined) ?? { match_all: {} }, doc.source);
        if (r.match) matched.push({ _index: index, _id: id, _score: r.score, _source: doc.source });
      }
    }
    const sort = body.sort as Record<string, string>[] | undefined;
    let page = matched;
    if (sort?.[0]) {
      const [field, dir] = Object.entries(sort[0])[0]!;
      const sign = dir === 'desc' ? -1 : 1;
      matched.sort((a, b) => compare(a._source[field], b._source[field]) * sign);
      // search_after: the hits sorting after the given value of the (first) sort field.
      const after = (body.search_after as unknown[] | undefined)?.[0];
      if (after !== undefined) page = matched.filter((h) => compare(h._source[field], after) * sign > 0);
    } else matched.sort((a, b) => b._score - a._score || a._id.localeCompare(b._id));
    return { took: 1, timed_out: false, hits: { total: { value: matched.length, relation: 'eq' }, hits: page.slice(0, (body.size as number | undefined) ?? 10) } };
  }

  function answer(method: string, path: string, query: Record<string, string>, body: unknown): { status: number; body?: unknown } {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (method === 'POST' && path === '/_bulk') return { status: 200, body: bulk(body as Record<string, unknown>[]) };
    if (method === 'POST' && path === '/_aliases') {
      const actions = (body as { actions: Record<string, { index: string; alias: string }>[] }).actions;
      for (const a of actions) {
        const [kind, spec] = Object.entries(a)[0]!;
        if (!indices.has(spec.index)) return { status: 404, body: { error: { type: 'index_not_found_exception' }, status: 404 } };
        if (kind === 'remove' && !aliases.get(spec.alias)?.has(spec.index)) return { status: 404, body: { error: { type: 'aliases_not_found_exception' }, status: 404 } };
      }
      // All or nothing, as OpenSearch applies an _aliases request.
      for (const a of actions) {
        const [kind, spec] = Object.entries(a)[0]!;
        const set = aliases.get(spec.alias) ?? new Set<string>();
        if (kind === 'add') set.add(spec.index);
        else set.delete(spec.index);
        aliases.set(spec.alias, set);
      }
      return { status: 200, body: { acknowledged: true } };
    }
    if (method === 'GET' && parts[0] === '_alias' && parts[1]) {
      const names = [...(aliases.get(parts[1]) ?? [])];
      if (names.length === 0) return { status: 404, body: { error: `alias [${parts[1]}] missing`, status: 404 } };
      return { status: 200, body: Object.fromEntries(names.map((n) => [n, { aliases: { [parts[1]!]: {} } }])) };
    }
    const [name, op] = parts as [string, string | undefined];
    if (!op && method === 'HEAD') return { status: resolve(name).length > 0 ? 200 : 404 };
    if (!op && method === 'PUT') {
      if (indices.has(name) || aliases.has(name)) return { status: 400, body: { error: { type: 'resource_already_exists_exception' }, status: 400 } };
      indices.set(name, new Map());
      const mappings = (body as { mappings?: { dynamic?: string; properties?: Record<string, unknown> } } | undefined)?.mappings;
      if (mappings?.dynamic === 'strict') strictFields.set(name, new Set(Object.keys(mappings.properties ?? {})));
      for (const alias of Object.keys(((body as { aliases?: Record<string, unknown> } | undefined)?.aliases) ?? {})) aliases.set(alias, new Set([...(aliases.get(alias) ?? []), name]));
      return { status: 200, body: { acknowledged: true, index: name } };
    }
    if (!op && method === 'DELETE') {
      if (!indices.delete(name)) return { status: 404, body: { error: { type: 'index_not_found_exception' }, status: 404 } };
      for (const set of aliases.values()) set.delete(name);
      return { status: 200, body: { acknowledged: true } };
    }
    if (resolve(name).length === 0) return { status: 404, body: { error: { type: 'index_not_found_exception', reason: `no such index [${name}]` }, status: 404 } };
    if (op === '_mget') {
      const docs = writeTarget(name) ?? new Map<string, StoredDoc>();
      const wanted = (body as { docs: { _id: string; routing?: string }[] }).docs;
      return {
        status: 200,
        body: {
          docs: wanted.map((w) => {
            const d = docs.get(w._id);
            return d && (w.routing === undefined || d.routing === undefined || d.routing === w.routing) ? { _index: name, _id: w._id, found: true, _version: d.version, _source: d.source } : { _index: name, _id: w._id, found: false };
          }),
        },
      };
    }
    if (op === '_mapping' && (method === 'PUT' || method === 'POST')) {
      // Adding fields to every index the name resolves to, as OpenSearch's put mapping does.
      for (const index of resolve(name)) for (const field of Object.keys((body as { properties?: Record<string, unknown> }).properties ?? {})) strictFields.get(index)?.add(field);
      return { status: 200, body: { acknowledged: true } };
    }
    if (op === '_search') return { status: 200, body: search(name, (body as Query | undefined) ?? {}, query.routing) };
    if (op === '_delete_by_query') {
      let deleted = 0;
      for (const index of resolve(name)) {
        const docs = indices.get(index)!;
        for (const [id, doc] of docs) {
          if (evaluate((body as { query: Query }).query, doc.source).match) {
            docs.delete(id);
            deleted += 1;
          }
        }
      }
      return { status: 200, body: { deleted, failures: [] } };
    }
    return { status: 400, body: { error: { type: 'fake_unsupported', reason: `${method} ${path}` }, status: 400 } };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    const body = url.pathname.endsWith('/_bulk')
      ? text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : text
        ? (JSON.parse(text) as unknown)
        : undefined;
    const method = req.method ?? 'GET';
    requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), body });
    // GET with a body is what the client sends for _search/_mget on some versions: same answer.
    const out = answer(method === 'GET' && body !== undefined && !url.pathname.startsWith('/_alias') ? 'POST' : method, url.pathname, Object.fromEntries(url.searchParams), body);
    res.writeHead(out.status, { 'content-type': 'application/json' });
    res.end(out.body === undefined || method === 'HEAD' ? undefined : JSON.stringify(out.body));
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'fake_error', reason: String(err) }, status: 500 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    indices,
    aliases,
    strictFields,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

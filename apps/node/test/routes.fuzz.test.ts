import fc from 'fast-check';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '@replica/storage';
import { MAX_ID_BYTES, TABLE_NAME, isTableName } from '@replica/transport-api';
import { allErrorCodes, buildApp, httpStatusOf } from '../src/index.js';
import { openStore, tempDir, testConfig } from './helpers.js';
import { fuzzParameters } from '@replica/transport-api/testing';

/*
 * Property-based fuzzing of the REST routes, in-process (app.inject) against a real LMDB
 * store. Whatever a client sends:
 *   - the answer is never a 5xx;
 *   - a 4xx has the documented JSON body, with a code from the app's error list whose
 *     HTTP status is the one answered;
 *   - a refused request writes nothing (log, per-table count and digest unchanged);
 *   - an accepted write reads back equal, through the store and through GET, and moves the
 *     log and the table's count by exactly one write.
 *
 * Every property runs with a fixed seed derived from its name; FUZZ_SEED=<int> replaces it.
 * On a failure fast-check prints the seed, the path and the shrunk counterexample.
 */

/** A property that runs longer than this fails; it also bounds the shrinking of a failure. */
const PROPERTY_TIME_LIMIT_MS = 25_000;

const fuzz = (numRuns: number) => fuzzParameters(numRuns, PROPERTY_TIME_LIMIT_MS);

const BODY_LIMIT = 1024 * 1024; // the default BODY_LIMIT
const STORE_MAX_DEPTH = 32; // Store.open's default maxDepth

// ------------------------------------------------------------------ requests

/** A path segment as it goes on the wire, and what it decodes to (undefined: it does not decode). */
interface Segment {
  readonly wire: string;
  readonly decoded: string | undefined;
}

const decode = (wire: string): string | undefined => {
  try {
    return decodeURIComponent(wire);
  } catch {
    return undefined;
  }
};
const segment = (wire: string): Segment => ({ wire, decoded: decode(wire) });
/** Percent-encodes the UTF-8 bytes of `s` (a lone surrogate becomes U+FFFD, as on any HTTP client). */
const encoded = (s: string): Segment => segment([...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''));

interface Request {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'OPTIONS';
  readonly table: Segment;
  readonly id: Segment;
  readonly contentType: string | undefined;
  readonly confirm: string | undefined;
  readonly payload: string | Buffer | undefined;
}

const inject = (r: Request): InjectOptions => ({
  method: r.method,
  url: r.method === 'POST' ? `/${r.table.wire}` : `/${r.table.wire}/${r.id.wire}`,
  headers: { ...(r.contentType !== undefined ? { 'content-type': r.contentType } : {}), ...(r.confirm !== undefined ? { 'x-replicate-confirm': r.confirm } : {}) },
  ...(r.payload !== undefined ? { payload: r.payload } : {}),
});

const validTable = fc.stringMatching(TABLE_NAME).filter(isTableName).map(segment);
/** A few fixed valid tables, so that writes meet earlier writes (409s, 200s, deletes that find something). */
const knownTable = fc.constantFrom('users', 'T', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'a_1').map(segment);
const oddTable = fc.oneof(
  fc.constantFrom(
    '', '__proto__', 'prototype', 'status', 'health', 'metrics', 'Status', '.', '..', '%2e', '%2E%2E', 'a.b', 'a%2Fb', '%2F', 'a%00b', '%00',
    '%', '%Z', '%ZZ', '%E0%A4%A', '%ED%A0%80', '%FF', '%C0%80', '%C3%BC', 'a%20b', 'a+b', 'a;b', 'a,b', 'a:b', 'a@b', "a'b", '%3Cscript%3E',
    '_t', '9t', 'T-1', 't'.repeat(64), 't'.repeat(65), 't'.repeat(600), 't'.repeat(601), 't'.repeat(5000),
  ).map(segment),
  fc.string({ unit: 'binary', maxLength: 80 }).map(encoded),
  fc.string({ unit: 'grapheme-ascii', maxLength: 80 }).map((s) => segment(s.replace(/[/?#% ]/g, '_'))),
);
const table = fc.oneof({ weight: 5, arbitrary: knownTable }, { weight: 1, arbitrary: validTable }, { weight: 2, arbitrary: oddTable });

/** Strings with lone surrogates mixed in: valid JSON (escaped), not valid Unicode text. */
const surrogateString = fc.string({ unit: fc.oneof(fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), minLength: 1, maxLength: 8 });
/** Record ids as JSON may carry them, valid or not. */
const idString = fc.oneof(
  fc.constantFrom('a', 'b', 'ada', 'x y', 'a/b', '?#', '\u0000', 'é', '😀', '%', '%ZZ', '..', '__proto__', 'constructor'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 16 }),
  fc.constantFrom('i'.repeat(MAX_ID_BYTES), 'é'.repeat(MAX_ID_BYTES / 2), 'i'.repeat(MAX_ID_BYTES + 1), 'é'.repeat(MAX_ID_BYTES / 2 + 1), ''),
  surrogateString,
);
/** A few ids that requests share, so that reads and deletes find what writes put. */
const commonId = fc.constantFrom('a', 'b', 'ada', 'x y', 'é');
const id = fc.oneof(
  { weight: 6, arbitrary: commonId.map(encoded) },
  { weight: 3, arbitrary: idString.map(encoded) },
  { weight: 2, arbitrary: oddTable },
);
/** Values that are not a valid id: every JSON type but a non-empty string of at most 512 bytes. */
const wrongId = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, 1, -1, 1.5, '', [], ['a'], {}, { id: 'a' }, 'i'.repeat(MAX_ID_BYTES + 1), 'é'.repeat(MAX_ID_BYTES / 2 + 1)),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 3 }),
);

const fields = fc.dictionary(
  fc.oneof({ weight: 9, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) }, { weight: 1, arbitrary: surrogateString }),
  fc.oneof({ weight: 9, arbitrary: fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }) }, { weight: 1, arbitrary: surrogateString }),
  { maxKeys: 5 },
);
/** A record body: an object with an optional id of any kind. */
const recordBody = fc
  .record({ fields, id: fc.option(fc.oneof({ weight: 6, arbitrary: commonId }, { weight: 3, arbitrary: idString }, { weight: 1, arbitrary: wrongId }), { nil: undefined }) })
  .map(({ fields: f, id: i }) => JSON.stringify(i === undefined ? f : { ...f, id: i }));

/** Bytes that are not UTF-8: surrogates (CESU-8), overlongs, stray and missing continuation bytes, 0xff. */
const badUtf8 = fc.oneof(
  fc.constantFrom([0xed, 0xa0, 0x80], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xfe], [0xff], [0xef, 0xbb, 0xbf]),
  fc.array(fc.integer({ min: 0x80, max: 0xff }), { minLength: 1, maxLength: 6 }),
);
const deepJson = fc
  .record({ depth: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 40, max: 100_000 })), arrays: fc.boolean() })
  .map(({ depth, arrays }) => (arrays ? `{"id":"deep","x":${'['.repeat(depth)}${']'.repeat(depth)}}` : `{"id":"deep",${'"a":{'.repeat(depth)}${'}'.repeat(depth)}}`));
const hugeJson = fc
  .oneof(fc.integer({ min: 0, max: 64 * 1024 }), fc.integer({ min: BODY_LIMIT - 40, max: BODY_LIMIT + 40 }), fc.constant(BODY_LIMIT * 2))
  .map((n) => `{"id":"huge","x":"${'x'.repeat(n)}"}`);
const oddJson = fc.constantFrom(
  '', ' ', 'null', 'true', '0', '"str"', '[]', '{}', '[{"id":"a"}]', '{"id":null}', '\ufeff{"id":"bom"}', '{"id":"dup","id":"dup2"}', '{"id":"a"} x', '{"id":"tail"}\n',
  '\u0000', '{"id":"a",}', "{'id':'a'}", 'NaN', '{"id":"nan","x":NaN}', '{"id":"inf","x":Infinity}', '{"id":"big","x":1e400}', '{"id":"neg","x":-1e400}',
  '{"id":"tiny","x":1e-400}', '{"id":"long","x":123456789012345678901234567890}', '{"id":"negzero","x":-0}', '{"__proto__":{"admin":true}}',
  '{"id":"p","constructor":{"prototype":{"admin":true}}}', '{"id":"p2","\\u005f_proto__":{}}', '{"id":"\\ud800"}', '{"id":"s","x":"\\udc00"}', '{"id":"k","\\ud800":1}',
);
/** Number literals at and beyond the edges of float64, which JSON.parse rounds, flushes to 0 or turns into Infinity. */
const numberLiteral = fc.constantFrom('1e400', '-1e400', '1e-400', '-1e-400', '-0', '0.1e1', '1E+2', '5e-324', '1.7976931348623157e308', '1.7976931348623159e308', '123456789012345678901234567890', '9007199254740993');
const truncatedJson = fc.tuple(recordBody, fc.nat()).map(([t, n]) => t.slice(0, n % t.length));
const bytesBody = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.tuple(badUtf8, badUtf8).map(([a, b]) => Buffer.concat([Buffer.from('{"id":"'), Buffer.from(a), Buffer.from('","x":"'), Buffer.from(b), Buffer.from('"}')])),
);
const body = fc.oneof(
  { weight: 6, arbitrary: recordBody },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: oddJson },
  { weight: 2, arbitrary: truncatedJson },
  { weight: 2, arbitrary: bytesBody },
  { weight: 1, arbitrary: deepJson },
);

const printable = fc.string({ unit: 'grapheme-ascii', maxLength: 40 });
const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'APPLICATION/JSON', 'application/json; charset=latin1', 'application/json; charset=utf-16le',
      'application/json ; x=y', 'application/json;', ' application/json', 'text/plain', 'text/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
      'application/octet-stream', 'application/jsonx', 'application/vnd.api+json', 'application/*', '*/*', ';', ';;;', 'json', '',
    ),
  },
  { weight: 1, arbitrary: printable },
  { weight: 1, arbitrary: fc.constant(undefined) },
);
const confirm = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constantFrom('0', '00', '1', '2', '9999', '10000', '-1', ' 1', '1.0', 'two', '', '0x1') },
);
const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<Request['method']>('POST', 'PUT') },
  { weight: 3, arbitrary: fc.constantFrom<Request['method']>('GET', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom<Request['method']>('PATCH', 'OPTIONS') },
);

const request = (parts: { table?: fc.Arbitrary<Segment>; id?: fc.Arbitrary<Segment>; body?: fc.Arbitrary<string | Buffer>; contentType?: fc.Arbitrary<string | undefined>; method?: fc.Arbitrary<Request['method']> } = {}): fc.Arbitrary<Request> =>
  fc
    .record({
      method: parts.method ?? method,
      table: parts.table ?? table,
      id: parts.id ?? id,
      contentType: parts.contentType ?? contentType,
      confirm,
      payload: fc.option(parts.body ?? body, { nil: undefined, freq: 10 }),
      bodyless: fc.nat(9),
    })
    // Most reads and deletes come without a body, as clients send them.
    .map(({ bodyless, ...r }) => (bodyless < 7 && (r.method === 'GET' || r.method === 'DELETE') ? { ...r, payload: undefined, contentType: undefined } : r));

// ------------------------------------------------------------------ the checks

const show = (r: Request): string =>
  `${r.method} ${inject(r).url?.toString().slice(0, 200)} content-type=${JSON.stringify(r.contentType)} confirm=${JSON.stringify(r.confirm)} payload=${
    r.payload === undefined ? '-' : Buffer.isBuffer(r.payload) ? `bytes ${r.payload.toString('hex').slice(0, 200)}` : JSON.stringify(r.payload.slice(0, 200))
  }`;

/** The JSON value a client sent, as the server parses it (BOM dropped), or undefined when it is not JSON. */
function sentJson(payload: string | Buffer | undefined): unknown {
  if (payload === undefined) return undefined;
  const text = (Buffer.isBuffer(payload) ? payload.toString('utf8') : payload).replace(/^\ufeff/, '');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** -0 as 0: JSON cannot tell them apart on the way out. */
function zeroed(v: unknown): unknown {
  if (Object.is(v, -0)) return 0;
  if (Array.isArray(v)) return v.map(zeroed);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, zeroed(x)]));
  return v;
}

interface StoreState {
  readonly lastSeq: number;
  readonly tables: Record<string, { count: number; digest: string }>;
}

const stateOf = (store: Store): StoreState => ({ lastSeq: store.lastSeq(), tables: store.tables() });

interface Harness {
  app: FastifyInstance;
  store: Store;
}

/**
 * Sends `r` and checks every property that holds for any request. Returns the response
 * for checks that only hold for some requests.
 */
async function send(h: Harness, r: Request): Promise<LightMyRequestResponse> {
  const before = stateOf(h.store);
  const res = await h.app.inject(inject(r));
  const what = `${show(r)}\n  -> ${res.statusCode} ${res.body.slice(0, 300)}`;
  expect(res.statusCode, what).toBeLessThan(500);
  const after = stateOf(h.store);

  if (res.statusCode >= 400) {
    const b = res.json<Record<string, unknown>>();
    expect(b, what).toMatchObject({ statusCode: res.statusCode, code: expect.any(String), error: expect.any(String), message: expect.any(String) });
    expect(allErrorCodes, what).toContain(b['code']);
    expect(httpStatusOf[b['code'] as keyof typeof httpStatusOf], what).toBe(res.statusCode);
    expect(after, `a refused request wrote: ${what}`).toEqual(before);
    return res;
  }

  const tableName = r.table.decoded as string;
  const countOf = (s: StoreState) => s.tables[tableName]?.count ?? 0;
  const readBack = async (recordId: string, expected: unknown) => {
    expect(zeroed(h.store.get(tableName, recordId)), what).toEqual(zeroed(expected));
    const got = await h.app.inject({ url: `/${encodeURIComponent(tableName)}/${encodeURIComponent(recordId)}` });
    expect(got.statusCode, what).toBe(200);
    expect(got.json(), what).toEqual(zeroed(expected));
  };
  const changedTables = Object.keys(after.tables).filter((t) => JSON.stringify(after.tables[t]) !== JSON.stringify(before.tables[t]));

  switch (`${r.method} ${res.statusCode}`) {
    case 'POST 201':
    case 'PUT 201':
    case 'PUT 200': {
      const recordId = res.json<{ id: string }>().id;
      if (r.method === 'PUT') expect(recordId, what).toBe(r.id.decoded);
      const sent = sentJson(r.payload) as Record<string, unknown>;
      expect(sent, `an accepted write whose body is not a JSON object: ${what}`).toBeTypeOf('object');
      await readBack(recordId, { ...sent, id: recordId });
      expect(after.lastSeq, what).toBe(before.lastSeq + 1);
      expect(changedTables, what).toEqual([tableName]);
      expect(countOf(after), what).toBe(countOf(before) + (res.statusCode === 201 ? 1 : 0));
      break;
    }
    case 'DELETE 204':
      expect(h.store.get(tableName, r.id.decoded as string), what).toBeUndefined();
      expect(after.lastSeq, what).toBe(before.lastSeq + 1);
      expect(changedTables, what).toEqual([tableName]);
      expect(countOf(after), what).toBe(countOf(before) - 1);
      break;
    case 'GET 200':
      expect(res.json(), what).toEqual(zeroed(h.store.get(tableName, r.id.decoded as string)));
      expect(after, what).toEqual(before);
      break;
    default:
      throw new Error(`unexpected answer ${res.statusCode}: ${what}`);
  }
  return res;
}

// ------------------------------------------------------------------ the properties

describe('REST routes under fuzzing', () => {
  const h = {} as Harness;
  let dir: ReturnType<typeof tempDir>;

  beforeEach(async () => {
    dir = tempDir('replica-fuzz-');
    h.store = openStore(dir.path);
    h.app = buildApp(testConfig(), { store: h.store });
    await h.app.ready();
  });
  afterEach(async () => {
    try {
      // /status reports what the store holds, and records, log, index and stats agree
      // (records are keyed [table, id], so ids of any length read back as written).
      const status = await h.app.inject({ url: '/status' });
      expect(status.json<{ tables: unknown }>().tables).toEqual(h.store.tables());
      expect(h.store.verify()).toEqual([]);
    } finally {
      await h.app.close();
      await h.store.close();
      dir.remove();
    }
  });

  it('any request on the table routes: no 5xx, documented 4xx, refusals write nothing, writes read back', async () => {
    await fc.assert(fc.asyncProperty(request(), async (r) => void (await send(h, r))), fuzz(400));
  });

  it('valid writes of any JSON content read back equal, and reads and deletes see them', async () => {
    const writes = fc
      .record({
        method: fc.constantFrom<Request['method']>('POST', 'PUT', 'PUT', 'GET', 'DELETE'),
        table: fc.constantFrom('users', 'constructor').map(segment),
        id: commonId,
        bodyId: fc.constantFrom('same', 'none', 'other'),
        other: commonId,
        fields,
        number: fc.option(numberLiteral, { nil: undefined }),
        contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8'),
      })
      .map(({ id: i, bodyId, other, fields: f, number, ...r }): Request => {
        const record = bodyId === 'none' ? f : { ...f, id: bodyId === 'same' ? i : other };
        const text = JSON.stringify(record);
        const payload = number === undefined ? text : text === '{}' ? `{"x":${number}}` : `${text.slice(0, -1)},"x":${number}}`;
        return { ...r, id: encoded(i), confirm: undefined, payload, ...(r.method === 'GET' || r.method === 'DELETE' ? { payload: undefined, contentType: undefined } : {}) };
      });
    await fc.assert(fc.asyncProperty(writes, async (r) => void (await send(h, r))), fuzz(300));
  });

  it('odd table names and ids in the URL', async () => {
    const anyRecord = fc.oneof(recordBody, fc.constant('{}'));
    await fc.assert(
      fc.asyncProperty(request({ table: fc.oneof(oddTable, knownTable), id: fc.oneof(oddTable, id), body: anyRecord, contentType: fc.constant('application/json') }), async (r) => {
        const res = await send(h, r);
        if (r.table.decoded === undefined || !isTableName(r.table.decoded)) expect(res.statusCode, show(r)).toBeGreaterThanOrEqual(400);
      }),
      fuzz(300),
    );
  });

  it('an id that is not a non-empty string of at most 512 bytes is a 400 REPLICA_ERR_RECORD_INVALID', async () => {
    await fc.assert(
      fc.asyncProperty(knownTable, fc.constantFrom<Request['method']>('POST', 'PUT'), wrongId, fields, async (t, m, wrong, f) => {
        const r: Request = { method: m, table: t, id: segment('a'), contentType: 'application/json', confirm: undefined, payload: JSON.stringify({ ...f, id: wrong }) };
        const res = await send(h, r);
        expect(res.statusCode, show(r)).toBe(400);
        expect(res.json(), show(r)).toMatchObject({ code: 'REPLICA_ERR_RECORD_INVALID' });
      }),
      fuzz(200),
    );
  });

  it('truncated JSON is a 400 REPLICA_ERR_BODY_INVALID_JSON; bytes that are not UTF-8 and other media types are refused cleanly', async () => {
    await fc.assert(
      fc.asyncProperty(knownTable, fc.constantFrom<Request['method']>('POST', 'PUT'), truncatedJson, async (t, m, text) => {
        const r: Request = { method: m, table: t, id: segment('a'), contentType: 'application/json', confirm: undefined, payload: text };
        const res = await send(h, r);
        expect(res.statusCode, show(r)).toBe(400);
        expect(res.json(), show(r)).toMatchObject({ code: 'REPLICA_ERR_BODY_INVALID_JSON' });
      }),
      fuzz(150),
    );
    await fc.assert(fc.asyncProperty(request({ table: knownTable, body: fc.oneof(bytesBody, recordBody) }), async (r) => void (await send(h, r))), fuzz(250));
  });

  it('deep nesting and huge bodies: a 400 beyond 32 levels, a 413 beyond BODY_LIMIT, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(knownTable, fc.constantFrom<Request['method']>('POST', 'PUT'), fc.oneof(deepJson, hugeJson), async (t, m, text) => {
        const r: Request = { method: m, table: t, id: segment(text.startsWith('{"id":"deep"') ? 'deep' : 'huge'), contentType: 'application/json', confirm: undefined, payload: text };
        const res = await send(h, r);
        const size = Buffer.byteLength(text);
        if (size > BODY_LIMIT) expect(res.json(), show(r)).toMatchObject({ statusCode: 413, code: 'REPLICA_ERR_BODY_TOO_LARGE' });
        const depth = text.startsWith('{"id":"deep","x":') ? 1 + text.indexOf(']') - '{"id":"deep","x":'.length : 1 + (text.match(/"a":\{/g)?.length ?? 0);
        if (size <= BODY_LIMIT && depth > STORE_MAX_DEPTH) expect(res.json(), show(r)).toMatchObject({ statusCode: 400, code: 'REPLICA_ERR_RECORD_INVALID' });
      }),
      fuzz(60),
    );
  });
});

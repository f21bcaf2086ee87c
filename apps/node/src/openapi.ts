import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { allErrorCodes, httpStatusOf } from './errors.js';

type ErrorCode = keyof typeof httpStatusOf;

/** The body of every error answer; `code` names one of the codes of docs/errors.md. */
export const errorSchema = {
  $id: 'ReplicaError',
  type: 'object',
  description: 'Every error answer: statusCode, code, error, message and requestId are always present.',
  properties: {
    statusCode: { type: 'integer', description: 'The HTTP status, repeated.' },
    code: { type: 'string', enum: allErrorCodes, description: 'A stable code; docs/errors.md says what each means and what to do.' },
    error: { type: 'string', description: 'The HTTP status text.' },
    message: { type: 'string', description: 'What went wrong, for people.' },
    requestId: { type: 'string', description: 'The X-Request-Id of the request (the one given, when valid, else a new UUID).' },
    reason: { type: 'string', description: 'REPLICA_ERR_NOT_READY: why the node is not ready.' },
    confirmed: { type: 'integer', description: 'REPLICA_ERR_CONFIRM_TIMEOUT: peers that confirmed in time.' },
    required: { type: 'integer', description: 'REPLICA_ERR_CONFIRM_TIMEOUT: peers asked for.' },
  },
  additionalProperties: true,
} as const;

/** Error answers any route can give: the router and the body parser refuse before a handler runs. */
const EVERY_ROUTE: readonly ErrorCode[] = ['REPLICA_ERR_ROUTE_NOT_FOUND', 'REPLICA_ERR_INTERNAL'];
const WITH_BODY: readonly ErrorCode[] = ['REPLICA_ERR_BODY_INVALID_JSON', 'REPLICA_ERR_BODY_TOO_LARGE', 'REPLICA_ERR_BODY_MEDIA_TYPE'];

/**
 * The error responses of a route, by HTTP status: each status lists the codes it can
 * carry, all with the {@link errorSchema} body.
 */
export function errorResponses(codes: readonly ErrorCode[], o: { body?: boolean } = {}): Record<number, object> {
  const byStatus = new Map<number, Set<ErrorCode>>();
  for (const code of [...codes, ...EVERY_ROUTE, ...(o.body ? WITH_BODY : [])]) {
    const status = httpStatusOf[code];
    if (!byStatus.has(status)) byStatus.set(status, new Set());
    byStatus.get(status)?.add(code);
  }
  const out: Record<number, object> = {};
  for (const [status, set] of [...byStatus].sort(([a], [b]) => a - b)) out[status] = { description: [...set].sort().join(', '), $ref: 'ReplicaError#' };
  return out;
}

/** A JSON object answer, described but not constrained (a record of any shape, a status). */
export const anyObject = { type: 'object', additionalProperties: true } as const;

/**
 * Registers the OpenAPI 3 description of every route (generated from the route schemas
 * by @fastify/swagger) at `/openapi.json`, and a browsable UI at `/docs`. Register it
 * before the routes, outside any encapsulated context: it learns them as they are added.
 * The schemas describe; the handlers check what they receive, so that every refusal
 * carries a Replica error code (the app's validator compiler validates nothing).
 */
export const openapi = fp<{ version: string }>(async (app: FastifyInstance, { version }) => {
  app.addSchema(errorSchema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Replica node',
        version,
        description:
          'A Replica node: JSON records in tables, every write replicated to every node. Error answers carry a stable `code` (docs/errors.md) and the request id (`X-Request-Id`).',
        license: { name: 'MIT' },
      },
      components: {
        securitySchemes: {
          apiToken: { type: 'http', scheme: 'bearer', description: 'API_TOKEN: needed by the table routes when the node sets it.' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN: needed by the /cluster routes; without it they are off.' },
        },
      },
      tags: [
        { name: 'records', description: 'Tables and their records' },
        { name: 'operations', description: 'Health, readiness, status and metrics' },
        { name: 'cluster', description: 'Cluster membership (admin)' },
      ],
    },
    // keep the shared schema's name (ReplicaError) in components.schemas
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(swaggerUi, { routePrefix: '/docs' });
});

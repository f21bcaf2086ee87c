import type { FastifyInstance } from 'fastify';
import type { ReplicationTransport } from '@replica/transport-api';
import { AdminDisabledError, AdminUnauthorizedError, InvalidMemberError, JoinDisabledError } from './errors.js';
import { tokenRequest, type JoinSigner } from './join.js';
import type { Membership } from './membership.js';
import { anyObject, errorResponses } from './openapi.js';
import { bearerCheck, objectBody } from './requests.js';

const ADMIN = ['REPLICA_ERR_ADMIN_DISABLED', 'REPLICA_ERR_ADMIN_AUTH_REQUIRED'] as const;
const adminSchema = (summary: string, o: { body?: object; params?: object; ok: Record<number, object>; errors?: Parameters<typeof errorResponses>[0] }) => ({
  schema: {
    tags: ['cluster'],
    summary,
    security: [{ adminToken: [] }],
    ...(o.params ? { params: o.params } : {}),
    ...(o.body ? { body: o.body } : {}),
    response: { ...o.ok, ...errorResponses([...ADMIN, ...(o.errors ?? [])], { body: o.body !== undefined }) },
  },
});
const member = { type: 'object', additionalProperties: true, description: 'A member: name, address, state (active or removed), revoked certificate fingerprints, when and by whom it changed.' } as const;
const nameParam = { type: 'object', properties: { name: { type: 'string', description: 'The member\'s node name.' } }, required: ['name'] } as const;

/**
 * The admin routes under `/cluster`, authenticated apart from the table routes: every
 * request needs `Authorization: Bearer <ADMIN_TOKEN>`; with no ADMIN_TOKEN the routes
 * answer 403 REPLICA_ERR_ADMIN_DISABLED. A refused request changes nothing.
 */
export function adminRoutes(adminToken: string | undefined, membership: Membership, transport: ReplicationTransport | undefined, signer: JoinSigner | undefined) {
  return async (admin: FastifyInstance): Promise<void> => {
    const authorized = adminToken === undefined ? undefined : bearerCheck(adminToken);
    admin.addHook('onRequest', async (req) => {
      if (authorized === undefined) throw new AdminDisabledError();
      if (!authorized(req.headers.authorization)) throw new AdminUnauthorizedError();
    });

    admin.get('/members', adminSchema('List the members, with whether each is connected to this node', { ok: { 200: { type: 'object', properties: { members: { type: 'array', items: member } } } } }), async () => {
      const peers = new Map((transport?.status().peers ?? []).map((p) => [p.name, p.connected]));
      return { members: membership.list().map((m) => ({ ...m, connected: m.name === membership.name || (peers.get(m.name) ?? false) })) };
    });

    const addBody = { type: 'object', properties: { name: { type: 'string' }, address: { type: 'string', description: 'host:port of its replication (plexus)' } }, required: ['name'], additionalProperties: false } as const;
    admin.post<{ Body: unknown }>('/members', adminSchema('Add a member', { body: addBody, ok: { 201: member }, errors: ['REPLICA_ERR_MEMBER_INVALID', 'REPLICA_ERR_MEMBER_EXISTS', 'REPLICA_ERR_MEMBERSHIP_UNAVAILABLE', 'REPLICA_ERR_STORAGE_FULL', 'REPLICA_ERR_STORAGE_FAILED'] }), async (req, reply) => {
      const { name, address } = objectBody(req.body, '{"name": "n4", "address": "host:port"}', ['name', 'address']);
      if (typeof name !== 'string') throw new InvalidMemberError('name: a string is required');
      if (address !== undefined && typeof address !== 'string') throw new InvalidMemberError('address: must be a string (host:port)');
      const record = await membership.add({ name, ...(address !== undefined ? { address } : {}) });
      return reply.code(201).send(record);
    });

    admin.delete<{ Params: { name: string } }>(
      '/members/:name',
      adminSchema('Remove a member: it is disconnected everywhere and its certificate refused from then on', {
        params: nameParam,
        ok: { 200: member },
        errors: ['REPLICA_ERR_MEMBER_INVALID', 'REPLICA_ERR_MEMBER_NOT_FOUND', 'REPLICA_ERR_MEMBER_REMOVAL_REFUSED', 'REPLICA_ERR_MEMBERSHIP_UNAVAILABLE', 'REPLICA_ERR_STORAGE_FULL', 'REPLICA_ERR_STORAGE_FAILED'],
      }),
      async (req) => membership.remove(req.params.name),
    );

    // A one-time token for one node to join with a certificate request (POST /cluster/join, outside this plugin).
    const tokenBody = { type: 'object', properties: { name: { type: 'string' }, ttlSeconds: { type: 'integer', minimum: 1 } }, required: ['name'], additionalProperties: false } as const;
    admin.post<{ Body: unknown }>('/join-tokens', adminSchema('Issue a one-time join token for a new node', { body: tokenBody, ok: { 201: anyObject }, errors: ['REPLICA_ERR_JOIN_DISABLED', 'REPLICA_ERR_MEMBER_INVALID', 'REPLICA_ERR_MEMBER_EXISTS'] }), async (req, reply) => {
      if (!signer) throw new JoinDisabledError();
      const { name, ttlSeconds } = tokenRequest(req.body, membership);
      return reply.code(201).send(signer.issue(name, ttlSeconds));
    });
  };
}

/**
 * `POST /cluster/join`: a new node presents a join token, its certificate request and its
 * replication address; it gets its certificate and the CA file, and is added. The token is
 * the authentication: this route takes no admin token.
 */
export function joinRoute(membership: Membership, signer: JoinSigner | undefined) {
  return async (app: FastifyInstance): Promise<void> => {
    const joinBody = { type: 'object', properties: { token: { type: 'string' }, csr: { type: 'string', description: 'PEM certificate request (replica-certs request)' }, address: { type: 'string' } }, required: ['token', 'csr'] } as const;
    const schema = {
      tags: ['cluster'],
      summary: 'Join with a one-time token and a certificate request: answers the signed certificate and the CA, and adds the node',
      body: joinBody,
      response: { 201: anyObject, ...errorResponses(['REPLICA_ERR_JOIN_DISABLED', 'REPLICA_ERR_JOIN_TOKEN_INVALID', 'REPLICA_ERR_MEMBER_INVALID', 'REPLICA_ERR_MEMBER_EXISTS', 'REPLICA_ERR_STORAGE_FULL', 'REPLICA_ERR_STORAGE_FAILED'], { body: true }) },
    };
    app.post<{ Body: unknown }>('/cluster/join', { schema }, async (req, reply) => {
      if (!signer) throw new JoinDisabledError();
      const { token, csr, address } = objectBody(req.body, '{"token", "csr", "address"}');
      return reply.code(201).send(await signer.redeem(token, csr, address, membership));
    });
  };
}

import type { FastifyInstance } from 'fastify';
import type { ReplicationTransport } from '@replica/transport-api';
import { AdminDisabledError, AdminUnauthorizedError, InvalidMemberError, JoinDisabledError } from './errors.js';
import { tokenRequest, type JoinSigner } from './join.js';
import type { Membership } from './membership.js';
import { bearerCheck, objectBody } from './requests.js';

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

    admin.get('/members', async () => {
      const peers = new Map((transport?.status().peers ?? []).map((p) => [p.name, p.connected]));
      return { members: membership.list().map((m) => ({ ...m, connected: m.name === membership.name || (peers.get(m.name) ?? false) })) };
    });

    admin.post<{ Body: unknown }>('/members', async (req, reply) => {
      const { name, address } = objectBody(req.body, '{"name": "n4", "address": "host:port"}', ['name', 'address']);
      if (typeof name !== 'string') throw new InvalidMemberError('name: a string is required');
      if (address !== undefined && typeof address !== 'string') throw new InvalidMemberError('address: must be a string (host:port)');
      const record = await membership.add({ name, ...(address !== undefined ? { address } : {}) });
      return reply.code(201).send(record);
    });

    admin.delete<{ Params: { name: string } }>('/members/:name', async (req) => membership.remove(req.params.name));

    // A one-time token for one node to join with a certificate request (POST /cluster/join, outside this plugin).
    admin.post<{ Body: unknown }>('/join-tokens', async (req, reply) => {
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
    app.post<{ Body: unknown }>('/cluster/join', async (req, reply) => {
      if (!signer) throw new JoinDisabledError();
      const { token, csr, address } = objectBody(req.body, '{"token", "csr", "address"}');
      return reply.code(201).send(await signer.redeem(token, csr, address, membership));
    });
  };
}

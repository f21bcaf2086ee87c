// The ceiling of the HTTP layer: a fastify POST route that parses the JSON body,
// picks the id and answers 201 — what the node does, minus validation and storage.
import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
app.post<{ Params: { table: string }; Body: { id?: string } }>(
  '/:table',
  { schema: { response: { 201: { type: 'object', properties: { id: { type: 'string' } } } } } },
  async (req, reply) => reply.code(201).send({ id: req.body.id }),
);
const address = await app.listen({ host: process.env['HOST'] ?? '127.0.0.1', port: Number(process.env['PORT'] ?? 0) });
process.stdout.write(`${JSON.stringify({ address, msg: 'replica node listening' })}\n`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));

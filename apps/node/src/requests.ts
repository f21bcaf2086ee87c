import { createHash, timingSafeEqual } from 'node:crypto';
import { InvalidMemberError } from './errors.js';

/**
 * Checks an `Authorization` header against `Bearer <token>` in constant time (both sides
 * are hashed, so a shorter or longer header takes as long).
 */
export function bearerCheck(token: string): (authorization: string | undefined) => boolean {
  const want = createHash('sha256').update(`Bearer ${token}`).digest();
  return (authorization) => timingSafeEqual(createHash('sha256').update(authorization ?? '').digest(), want);
}

/**
 * An admin request's body as a JSON object, or an {@link InvalidMemberError}: not an
 * object (`shape` shows the one expected), or, when `fields` is given, a field that is
 * not one of them.
 */
export function objectBody(body: unknown, shape: string, fields?: readonly string[]): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidMemberError(`the body must be a JSON object: ${shape}`);
  const unknown = fields && Object.keys(body).find((k) => !fields.includes(k));
  if (unknown !== undefined) throw new InvalidMemberError(`unknown field ${JSON.stringify(unknown)}: only ${fields?.join(' and ')}`);
  return body as Record<string, unknown>;
}

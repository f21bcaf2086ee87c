/**
 * A transport's settings: `init` with every setting it leaves undefined taken from
 * `defaults`. Frozen, so a running transport's settings never change under it.
 */
export function withDefaults<I extends object, D extends object>(init: I, defaults: D): Readonly<Omit<I, keyof D> & D> {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [key, value] of Object.entries(init)) if (value !== undefined) out[key] = value;
  return Object.freeze(out) as Readonly<Omit<I, keyof D> & D>;
}

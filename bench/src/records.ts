import { randomUUID } from 'node:crypto';

export type IdMode = 'random' | 'sequential';

/**
 * The published workload's record: 8 fields, about 400 bytes of JSON with its id.
 * Values vary per call so no two records are alike.
 */
export function makeRecord(id: string, n: number): Record<string, unknown> {
  return {
    id,
    name: `user-${n.toString(36).padStart(8, '0')}`,
    email: `user${n}@example.com`,
    age: 18 + (n % 80),
    city: CITIES[n % CITIES.length],
    score: Math.round(((n * 7919) % 100000) / 10) / 100,
    active: n % 3 !== 0,
    bio: `${BIO.slice(0, 230)}#${n}`,
  };
}

/** A generator of ids: random UUIDs, or zero-padded sequential ids with a prefix unique to the run. */
export function idSource(mode: IdMode, prefix: string): () => string {
  if (mode === 'random') return randomUUID;
  let n = 0;
  return () => `${prefix}-${(n++).toString().padStart(12, '0')}`;
}

const CITIES = ['Amsterdam', 'Berlin', 'Cairo', 'Denver', 'Edinburgh', 'Fukuoka', 'Geneva', 'Helsinki'];
const BIO =
  'Replicated write benchmark record. Every node in the cluster must hold this document before it counts as replicated. ' +
  'The text pads the record to the size used by the published test, which wrote 400-byte records with eight fields through POST.';

/** The same record as {@link makeRecord}, built as a JSON string directly (cheaper per request). */
export function recordJson(id: string, n: number): string {
  const score = Math.round(((n * 7919) % 100000) / 10) / 100;
  return (
    `{"id":"${id}","name":"user-${n.toString(36).padStart(8, '0')}","email":"user${n}@example.com",` +
    `"age":${18 + (n % 80)},"city":"${CITIES[n % CITIES.length]}","score":${score},"active":${n % 3 !== 0},` +
    `"bio":"${BIO.slice(0, 230)}#${n}"}`
  );
}

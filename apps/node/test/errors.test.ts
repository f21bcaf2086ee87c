import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allErrorCodes, httpStatusOf } from '../src/index.js';

const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

describe('error codes', () => {
  it('docs/errors.md lists exactly the codes the code raises, with their HTTP status', () => {
    const documented = new Map<string, number>();
    for (const m of docs.matchAll(/^\|\s*`(REPLICA_ERR_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) {
      documented.set(m[1] as string, Number(m[2]));
    }
    expect([...documented.keys()].sort()).toEqual(allErrorCodes);
    for (const code of allErrorCodes) {
      expect(documented.get(code), code).toBe(httpStatusOf[code as keyof typeof httpStatusOf]);
    }
  });
});

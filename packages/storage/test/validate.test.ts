import { describe, expect, it } from 'vitest';
import { InvalidRecordError, InvalidTableError } from '@replica/transport-api';
import { unstorable, validate, validateKey } from '../src/validate.js';

const nested = (levels: number): unknown => (levels === 0 ? 1 : { d: nested(levels - 1) });

describe('validation', () => {
  it('allows exactly max levels of nesting, objects and arrays alike', () => {
    expect(unstorable(nested(3), 3, 3)).toBeUndefined();
    expect(unstorable(nested(4), 3, 3)).toBe('nesting deeper than 3 levels');
    expect(unstorable([[[1]]], 3, 3)).toBeUndefined();
    expect(unstorable([[[[1]]]], 3, 3)).toBe('nesting deeper than 3 levels');
  });

  it('accepts well-formed text, including surrogate pairs, and plain scalars', () => {
    expect(unstorable({ s: '😀', n: -0, b: true, z: null }, 2, 2)).toBeUndefined();
    expect(unstorable('\ud83d', 1, 1)).toMatch(/lone surrogates/);
  });

  it('throws the shared error classes', () => {
    expect(() => validateKey('1bad', 'a')).toThrow(InvalidTableError);
    expect(() => validateKey('t', '')).toThrow(InvalidRecordError);
    expect(() => validate('t', 'x' as never, 32)).toThrow('a record must be a JSON object');
    expect(() => validate('t', { id: 'a', x: nested(2) as never }, 2)).toThrow('nesting deeper than 2 levels');
    expect(() => validate('t', { id: 'a', x: nested(1) as never }, 2)).not.toThrow();
  });
});

import { describe, expect, it } from '@jest/globals';
import { gzipSync } from 'node:zlib';
import { itemHolds } from './dynamo-erasure.js';

describe('itemHolds', () => {
  it('finds a needle in strings, sets, lists, maps (keys too) and binary payloads, gzipped or not', () => {
    const n = ['ada@example.com'];
    expect(itemHolds({ a: { S: 'to ada@example.com' } }, n)).toBe(true);
    expect(itemHolds({ a: { SS: ['x', 'ada@example.com'] } }, n)).toBe(true);
    expect(itemHolds({ a: { L: [{ N: '1' }, { M: { b: { S: 'ada@example.com' } } }] } }, n)).toBe(true);
    expect(itemHolds({ a: { M: { 'ada@example.com': { BOOL: true } } } }, n)).toBe(true);
    expect(itemHolds({ a: { B: Buffer.from('{"email":"ada@example.com"}') } }, n)).toBe(true);
    expect(itemHolds({ a: { B: gzipSync('{"email":"ada@example.com"}') } }, n)).toBe(true);
    expect(itemHolds({ a: { S: 'nothing' }, b: { N: '7' }, c: { B: gzipSync('other') }, d: { NULL: true } }, n)).toBe(false);
  });
});

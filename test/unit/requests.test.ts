import { expect } from 'chai';
import { isErrorReply, parseRequest, type Limits, type Op } from '../../src/protocol/requests.js';
import { BUILTIN_RESOLVERS, lww } from '../../src/resolvers/index.js';
import { encodeContext } from '../../src/versioning/index.js';

const base: Limits = {
  n: 3,
  defaultR: 2,
  defaultW: 2,
  defaultTimeoutMs: 1000,
  maxTimeoutMs: 60_000,
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  resolver: lww,
};
/** Buckets named after a resolver use it ("orset", "union", ...); any other bucket is lww. */
const limits = (bucket: string): Limits => ({ ...base, resolver: BUILTIN_RESOLVERS.get(bucket) ?? lww });
const enc = (x: unknown) => new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x));
const code = (op: Op, body: unknown) => {
  const r = parseRequest(op, enc(body), limits);
  return isErrorReply(r) ? r.error.code : 'OK';
};

describe('request validation', () => {
  const rows: [string, Op, unknown, string][] = [
    ['malformed JSON', 'get', '{"key":', 'BAD_REQUEST'],
    ['a JSON array body', 'get', '[1]', 'BAD_REQUEST'],
    ['a JSON string body', 'put', '"x"', 'BAD_REQUEST'],
    ['null body', 'get', 'null', 'BAD_REQUEST'],
    ['missing key', 'get', {}, 'BAD_REQUEST'],
    ['empty key', 'get', { key: '' }, 'BAD_REQUEST'],
    ['numeric key', 'get', { key: 7 }, 'BAD_REQUEST'],
    ['key over 1024 bytes', 'get', { key: 'é'.repeat(513) }, 'BAD_REQUEST'],
    ['key of exactly 1024 bytes', 'get', { key: 'k'.repeat(1024) }, 'OK'],
    ['r of 0', 'get', { key: 'k', r: 0 }, 'BAD_REQUEST'],
    ['r above N', 'get', { key: 'k', r: 4 }, 'BAD_REQUEST'],
    ['fractional r', 'get', { key: 'k', r: 1.5 }, 'BAD_REQUEST'],
    ['string w', 'put', { key: 'k', value: 1, w: '2' }, 'BAD_REQUEST'],
    ['put without value', 'put', { key: 'k' }, 'BAD_REQUEST'],
    ['put with null value', 'put', { key: 'k', value: null }, 'OK'],
    ['undecodable context', 'put', { key: 'k', value: 1, context: 'not!base64' }, 'BAD_REQUEST'],
    ['context of the wrong shape', 'put', { key: 'k', value: 1, context: Buffer.from('[1,2]').toString('base64url') }, 'BAD_REQUEST'],
    ['context with a bad entry', 'delete', { key: 'k', context: Buffer.from('{"n1":[0,1]}').toString('base64url') }, 'BAD_REQUEST'],
    ['numeric context', 'delete', { key: 'k', context: 5 }, 'BAD_REQUEST'],
    ['a context we issued', 'put', { key: 'k', value: 1, context: encodeContext({ n1: [3, 1000] }) }, 'OK'],
    ['a context naming a node "ok"', 'put', { key: 'k', value: 1, context: encodeContext({ ok: [1, 1] }) }, 'OK'],
    ['value over 1 MiB', 'put', { key: 'k', value: 'x'.repeat(1024 * 1024) }, 'TOO_LARGE'],
    ['bad bucket', 'get', { key: 'k', bucket: 'a:b' }, 'BAD_REQUEST'],
    ['timeout of 0', 'get', { key: 'k', timeoutMs: 0 }, 'BAD_REQUEST'],
    ['timeout over the maximum', 'get', { key: 'k', timeoutMs: 600_000 }, 'BAD_REQUEST'],
    ['unknown field', 'get', { key: 'k', valu: 1 }, 'BAD_REQUEST'],
    ['value on a get', 'get', { key: 'k', value: 1 }, 'BAD_REQUEST'],
    ['a plain get', 'get', { key: 'k' }, 'OK'],
    ['ifMatch with a context we issued', 'put', { key: 'k', value: 1, ifMatch: encodeContext({ n1: [3, 1000] }) }, 'OK'],
    ['ifMatch that is not a context', 'put', { key: 'k', value: 1, ifMatch: 'nope!' }, 'BAD_REQUEST'],
    [
      'ifMatch and a context together',
      'put',
      { key: 'k', value: 1, ifMatch: encodeContext({ n1: [1, 1] }), context: encodeContext({ n1: [1, 1] }) },
      'BAD_REQUEST',
    ],
    ['ifNoneMatch', 'put', { key: 'k', value: 1, ifNoneMatch: true }, 'OK'],
    ['ifNoneMatch false', 'put', { key: 'k', value: 1, ifNoneMatch: false }, 'BAD_REQUEST'],
    ['ifNoneMatch on a delete', 'delete', { key: 'k', ifNoneMatch: true }, 'BAD_REQUEST'],
    ['an op to an lww bucket', 'put', { key: 'k', op: { add: [1] } }, 'BAD_REQUEST'],
    ['a union value that is not an array', 'put', { key: 'k', bucket: 'union', value: 'milk' }, 'BAD_REQUEST'],
    ['a union array', 'put', { key: 'k', bucket: 'union', value: ['milk'] }, 'OK'],
    ['an orset op', 'put', { key: 'k', bucket: 'orset', op: { add: ['milk'], remove: ['eggs'] } }, 'OK'],
    ['a value to an orset bucket', 'put', { key: 'k', bucket: 'orset', value: ['milk'] }, 'BAD_REQUEST'],
    ['an orset op with an unknown part', 'put', { key: 'k', bucket: 'orset', op: { add: ['milk'], clear: true } }, 'BAD_REQUEST'],
    ['an empty orset op', 'put', { key: 'k', bucket: 'orset', op: {} }, 'BAD_REQUEST'],
    ['an orset add that is not a list', 'put', { key: 'k', bucket: 'orset', op: { add: 'milk' } }, 'BAD_REQUEST'],
    ['an orset op of 1001 elements', 'put', { key: 'k', bucket: 'orset', op: { add: Array.from({ length: 1001 }, (_, i) => i) } }, 'BAD_REQUEST'],
    ['a counter increment', 'put', { key: 'k', bucket: 'counter', op: { incr: -3 } }, 'OK'],
    ['a fractional counter increment', 'put', { key: 'k', bucket: 'counter', op: { incr: 1.5 } }, 'BAD_REQUEST'],
    ['a huge counter increment', 'put', { key: 'k', bucket: 'counter', op: { incr: 2 ** 53 } }, 'BAD_REQUEST'],
    ['a counter op of another kind', 'put', { key: 'k', bucket: 'counter', op: { add: [1] } }, 'BAD_REQUEST'],
  ];
  for (const [name, op, body, want] of rows) {
    it(`${name}: ${want}`, () => expect(code(op, body)).to.equal(want));
  }

  it('keeps the value as JSON text and fills in defaults', () => {
    const r = parseRequest('put', enc({ key: 'k', value: { a: [1, 2.5, 'x'] } }), limits);
    expect(r).to.deep.include({ op: 'put', bucket: 'default', key: 'k', value: '{"a":[1,2.5,"x"]}', w: 2, timeoutMs: 1000 });
  });

  it('names the offending field in the error', () => {
    const r = parseRequest('get', enc({ key: 'k', r: 9 }), limits);
    expect(isErrorReply(r) && r.error).to.deep.include({ code: 'BAD_REQUEST', field: 'r' });
  });
});

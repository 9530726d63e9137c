import { expect } from 'chai';
import { isErrorReply, parseRequest, type Limits, type Op } from '../../src/protocol/requests.js';
import { encodeContext } from '../../src/versioning/index.js';

const limits: Limits = { n: 3, defaultR: 2, defaultW: 2, defaultTimeoutMs: 1000, maxTimeoutMs: 60_000, maxKeyBytes: 1024, maxValueBytes: 1024 * 1024 };
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

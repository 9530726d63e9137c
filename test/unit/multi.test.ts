import { expect } from 'chai';
import { fittedBatchReply, MAX_MULTI, parseMulti } from '../../src/protocol/batch.js';

describe('mget and mput bodies', () => {
  it('turn into one request per key, the shared fields on each', () => {
    expect(parseMulti('mget', { bucket: 'b', keys: ['x', 'y'], r: 1 })).to.deep.equal([
      { op: 'get', body: { bucket: 'b', r: 1, key: 'x' } },
      { op: 'get', body: { bucket: 'b', r: 1, key: 'y' } },
    ]);
    expect(parseMulti('mput', { items: [{ key: 'x', value: 1, context: 'c' }], w: 2 })).to.deep.equal([
      { op: 'put', body: { w: 2, key: 'x', value: 1, context: 'c' } },
    ]);
  });

  it('refuse a malformed whole with BAD_REQUEST, naming the field', () => {
    const code = (r: unknown) => (r as { error?: { code: string; message: string } }).error;
    expect(code(parseMulti('mget', undefined))?.message).to.equal('request body is not valid JSON');
    expect(code(parseMulti('mget', { keys: 'x' }))?.code).to.equal('BAD_REQUEST');
    expect(code(parseMulti('mget', { keys: [] }))?.message).to.contain(`1 to ${MAX_MULTI} keys`);
    expect(code(parseMulti('mget', { keys: Array(MAX_MULTI + 1).fill('k') }))?.code).to.equal('BAD_REQUEST');
    expect(code(parseMulti('mput', { items: [{ key: 'a', value: 1 }], value: 3 }))?.message).to.equal('unknown field "value" in an mput');
  });

  it('refuse a bad mput item alone, and never let an item name its own bucket', () => {
    const items = parseMulti('mput', { bucket: 'cart', items: [{ key: 'a', value: 1 }, 7, { key: 'b', value: 2, bucket: 'admin' }] });
    expect(Array.isArray(items)).to.equal(true);
    const [ok, notObject, ownBucket] = items as { refused?: { error: { message: string } }; body: unknown }[];
    expect(ok!.refused).to.equal(undefined);
    expect(ok!.body).to.deep.equal({ bucket: 'cart', key: 'a', value: 1 });
    expect(notObject!.refused?.error.message).to.contain('mput item 1');
    expect(ownBucket!.refused?.error.message).to.contain('"bucket" is not an item field');
  });
});

describe('a batch reply within the message limit', () => {
  it('is the results spliced in as they are when they fit', () => {
    expect(fittedBatchReply(['{"ok":true}', '{"ok":false}'], 1000)).to.equal('{"ok":true,"results":[{"ok":true},{"ok":false}]}');
  });

  it('replaces the largest results by TOO_LARGE until the rest fit, keeping order and count', () => {
    const big = `{"ok":true,"values":["${'x'.repeat(600)}"]}`;
    const small = '{"ok":true,"values":[1]}';
    const text = fittedBatchReply([small, big, small, big], 1000);
    expect(Buffer.byteLength(text)).to.be.at.most(1000);
    const results = (JSON.parse(text) as { results: { ok: boolean; error?: { code: string } }[] }).results;
    expect(results).to.have.length(4);
    expect(results.map((r) => r.error?.code ?? 'ok')).to.deep.equal(['ok', 'TOO_LARGE', 'ok', 'ok']);
  });
});

import 'reflect-metadata';
import { expect } from 'chai';
import { clusterBlocker, keyBlocker, parseSynced, reapAudience, shortestGrace, syncedText } from '../../src/membership/reaping.js';
import { compactCopy } from '../../actors/node/retired-tags.js';
import { dropCovered } from '../../actors/node/tombstones.js';
import type { MemberView } from '../../src/membership/membership.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import type { Version } from '../../src/versioning/index.js';

describe('tombstone reaping rules', () => {
  const ring = 'ring-a';
  const synced = (records: Record<string, { at: number; ring: string }>) => (peer: string) => records[peer] ?? null;

  it('reaps a key only on its first replica, past its grace, once every other replica was in sync after it changed, on this ring', () => {
    const all = synced({ n2: { at: 150, ring }, n3: { at: 160, ring } });
    expect(keyBlocker('n1', ['n1', 'n2', 'n3'], 100, 50, 200, ring, all)).to.equal(null);
    expect(keyBlocker('n2', ['n1', 'n2', 'n3'], 100, 50, 200, ring, all)).to.equal('not first replica');
    expect(keyBlocker('n1', ['n1', 'n2', 'n3'], 100, 150, 200, ring, all)).to.equal('in grace');
    // A grace of 0 never reaps.
    expect(keyBlocker('n1', ['n1', 'n2', 'n3'], 100, 0, 200, ring, all)).to.equal('in grace');
    // n3's last in-sync exchange read the tree before the key changed, or at the same ms: not proof it holds the tombstone.
    expect(keyBlocker('n1', ['n1', 'n2', 'n3'], 160, 10, 200, ring, synced({ n2: { at: 170, ring }, n3: { at: 160, ring } }))).to.equal(
      'not yet in sync with n3',
    );
    expect(keyBlocker('n1', ['n1', 'n2', 'n3'], 100, 50, 200, ring, synced({ n2: { at: 150, ring } }))).to.equal('not yet in sync with n3');
    // An exchange on another ring compared other ranges.
    expect(keyBlocker('n1', ['n1', 'n2', 'n3'], 100, 50, 200, ring, synced({ n2: { at: 150, ring }, n3: { at: 160, ring: 'ring-b' } }))).to.equal(
      'not yet in sync with n3',
    );
  });

  it('holds every reap while a ring member is down or the ring is changing', () => {
    const down = new Set(['n3']);
    expect(clusterBlocker(['n1', 'n2', 'n3'], (id) => down.has(id), false)).to.match(/^n3 is down/);
    expect(clusterBlocker(['n1', 'n2'], (id) => down.has(id), true)).to.match(/ring is changing/);
    expect(clusterBlocker(['n1', 'n2'], (id) => down.has(id), false)).to.equal(null);
  });

  it('asks every member it hears from, left ones included, but not itself or the down', () => {
    const m = (id: string, liveness: MemberView['liveness'], status: MemberView['status']) =>
      ({ id, liveness, status, weight: 1, ringWeight: 1, generation: 1, heartbeat: 1, heartbeatAgeMs: 0 }) as MemberView;
    expect(reapAudience('n1', [m('n1', 'alive', 'up'), m('n2', 'suspect', 'up'), m('n3', 'down', 'up'), m('n4', 'alive', 'left')])).to.deep.equal(['n2', 'n4']);
  });

  it('takes the shortest grace in force', () => {
    expect(shortestGrace(1000, [undefined, 500, 2000])).to.equal(500);
    expect(shortestGrace(0, [undefined])).to.equal(0);
    expect(shortestGrace(0, [700])).to.equal(700);
  });

  it('reads back the records it writes, and nothing else', () => {
    expect(parseSynced(syncedText({ at: 5, ring }))).to.deep.equal({ at: 5, ring });
    for (const junk of [null, '', '{', '{"at":"5","ring":"r"}', '{"at":5}', '[]']) expect(parseSynced(junk), String(junk)).to.equal(null);
  });

  // U, then V written over it (V's clock covers U); W concurrent with V.
  const state = (e: Record<string, string[]>, x: string[]) => JSON.stringify({ e, x });
  const U: Version = { d: ['n1.a', 1], c: {}, t: 1, v: state({ '"milk"': ['t1'] }, []) };
  const V: Version = { d: ['n1.a', 2], c: { 'n1.a': [1, 1] }, t: 2, v: state({}, ['t1']) };
  const W: Version = { d: ['n3.a', 1], c: { 'n1.a': [1, 1] }, t: 3, v: state({ '"milk"': ['t1'], '"jam"': ['t2'] }, []) };
  const tomb: Version = { d: ['n1.a', 2], c: { 'n1.a': [1, 1] }, t: 2 };

  it('a member drops a copy and hints its tombstones cover, and keeps what they do not', async () => {
    const s = new MemoryStorage();
    await s.apply('b', 'covered', [U]);
    await s.storeHint('n9', 'b', 'covered', [U]);
    await s.apply('b', 'newer', [W]);
    expect(await dropCovered(s, 'b', 'covered', [tomb], await s.hintOwners())).to.equal('dropped');
    expect(await s.readRaw('b', 'covered')).to.equal(null);
    expect(await s.hintCount()).to.equal(0);
    expect(await dropCovered(s, 'b', 'newer', [tomb], [])).to.equal('kept');
    expect(await s.read('b', 'newer')).to.deep.equal([W]);
    expect(await dropCovered(s, 'b', 'never', [tomb], [])).to.equal('absent');
  });

  it("rewrites an OR-Set's one version without its retired tags only where that version is held alone", async () => {
    const s = new MemoryStorage();
    await s.apply('cart', 'same', [V]);
    await s.apply('cart', 'older', [U]);
    await s.apply('cart', 'both', [V, W]);
    expect(await compactCopy(s, 'cart', 'same', V, false, [])).to.equal('same');
    expect(JSON.parse((await s.read('cart', 'same'))[0]!.v!)).to.deep.equal({ e: {}, x: ['t1'] });
    expect(await compactCopy(s, 'cart', 'same', V, true, [])).to.equal('compacted');
    expect(await s.read('cart', 'same')).to.deep.equal([{ ...V, v: state({}, []) }]);
    // Asked again, it is already done.
    expect(await compactCopy(s, 'cart', 'same', V, true, [])).to.equal('compacted');
    expect(await compactCopy(s, 'cart', 'older', V, true, [])).to.equal('covered');
    expect(await s.read('cart', 'older')).to.deep.equal([U]);
    expect(await compactCopy(s, 'cart', 'both', V, true, [])).to.equal('kept');
    expect(await compactCopy(s, 'cart', 'none', V, true, [])).to.equal('absent');
    // A hint holding a concurrent version stops it.
    await s.storeHint('n9', 'cart', 'hinted', [W]);
    await s.apply('cart', 'hinted', [V]);
    expect(await compactCopy(s, 'cart', 'hinted', V, true, await s.hintOwners())).to.equal('kept');
    expect(await s.read('cart', 'hinted')).to.deep.equal([V]);
  });
});

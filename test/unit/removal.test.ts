import { expect } from 'chai';
import { isNewer, reconcile, statusOf, type Member, type MemberTable } from '../../src/membership/member.js';
import { removalRefusal, removedEntry } from '../../src/membership/removal.js';

const member = (id: string, weight = 1): Member => ({ id, generation: 1, heartbeat: 50, weight, ringWeight: weight });
const table = (...ms: Member[]): MemberTable => Object.fromEntries(ms.map((m) => [m.id, m]));

describe('removing a member (pure rules)', () => {
  const t = table(member('a'), member('b'), member('c'));

  it('refuses an unknown member, one that left, and one that is not down', () => {
    expect(removalRefusal(t, 'z', 3, () => true)).to.match(/not a member/);
    expect(removalRefusal(table(member('a'), { ...member('b'), weight: 0, ringWeight: 0 }), 'b', 3, () => true)).to.match(/already left/);
    expect(removalRefusal(t, 'c', 3, () => false)).to.match(/not down: a live node leaves with "dynamo leave c"/);
  });

  it('allows a down member whose ranges keep a live replica, and refuses one whose ranges would keep none', () => {
    expect(removalRefusal(t, 'c', 3, (id) => id === 'c')).to.equal(null);
    // N=3 on three nodes, two down: the third still holds every range.
    expect(removalRefusal(t, 'c', 3, (id) => id !== 'a')).to.equal(null);
    // N=1: each range is on one node only, so removing a down one loses its ranges.
    expect(removalRefusal(t, 'c', 1, (id) => id === 'c')).to.match(/no live replica/);
    // The last member.
    expect(removalRefusal(table(member('a')), 'a', 3, () => true)).to.match(/no live replica/);
  });

  it('takes the member out of the ring in an entry newer than every copy of its old one; a restart is newer still', () => {
    const old = member('c');
    const removed = removedEntry(old);
    expect(statusOf(removed)).to.equal('left');
    expect(isNewer(removed, { ...old, heartbeat: old.heartbeat + 10_000 })).to.equal(true);
    // Gossip spreads the removal; an older copy of the entry does not undo it.
    const merged = reconcile(table(member('a'), removed), [old], 'a').table;
    expect(merged['c']).to.deep.equal(removed);
    const restarted: Member = { ...old, generation: 2, heartbeat: 0 };
    expect(isNewer(restarted, removed)).to.equal(true);
  });
});

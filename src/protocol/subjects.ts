import type { Op } from './requests.js';

/** Every NATS subject the cluster uses, in one place. */
export function subjects(prefix: string) {
  return {
    /** client requests any node may take (queue group `queue.kv`) */
    kv: (op: Op) => `${prefix}.kv.${op}`,
    /** client requests on one bucket (any node, queue group `queue.kv`): a NATS permission can scope a user to a bucket */
    bucketKv: (bucket: string, op: Op) => `${prefix}.kv.${bucket}.${op}`,
    /** every bucket's subject of `op`, to subscribe to */
    anyBucketKv: (op: Op) => `${prefix}.kv.*.${op}`,
    /** client requests for one node (partition-aware clients) */
    nodeKv: (node: string, op: Op) => `${prefix}.node.${node}.kv.${op}`,
    /** a batch of client requests (src/protocol/batch.ts): any node (queue group `queue.kv`), or one node */
    kvBatch: `${prefix}.kv.batch`,
    nodeKvBatch: (node: string) => `${prefix}.node.${node}.kv.batch`,
    /** many keys in one request, one result per key (src/protocol/batch.ts parseMulti): any node (queue group `queue.kv`) */
    kvMget: `${prefix}.kv.mget`,
    kvMput: `${prefix}.kv.mput`,
    /** one page of a bucket's keys (src/protocol/keys.ts): any node (queue group `queue.kv`), or on the bucket's own subject */
    kvKeys: `${prefix}.kv.keys`,
    anyBucketKeys: `${prefix}.kv.*.keys`,
    /** change events of a bucket, published after each acknowledged write (src/protocol/changes.ts) */
    watch: (bucket: string) => `${prefix}.watch.${bucket}`,
    /** a node's change log, for a watcher to fetch what it missed */
    nodeWatchSince: (node: string) => `${prefix}.node.${node}.watch.since`,
    /** backups: one page of a node's stored keys (operators); restore: versions merged into their replicas (any node) */
    nodeBackup: (node: string) => `${prefix}.node.${node}.admin.backup`,
    restore: `${prefix}.admin.restore`,
    /** a node's part of a key listing another node planned */
    nodeKeys: (node: string) => `${prefix}.node.${node}.keys`,
    /** requests forwarded by another node, as a batch: coordinate them here, never forward again */
    coordinateBatch: (node: string) => `${prefix}.node.${node}.coord.batch`,
    /** replica reads and writes between nodes, batched */
    replicaGet: (node: string) => `${prefix}.node.${node}.replica.get`,
    replicaPut: (node: string) => `${prefix}.node.${node}.replica.put`,
    replicaReap: (node: string) => `${prefix}.node.${node}.replica.reap`,
    replicaCompact: (node: string) => `${prefix}.node.${node}.replica.compact`,
    ping: (node: string) => `${prefix}.node.${node}.admin.ping`,
    leave: (node: string) => `${prefix}.node.${node}.admin.leave`,
    /** gossip exchange: a member table in, the receiver's table back */
    gossip: (node: string) => `${prefix}.node.${node}.gossip`,
    /** a node's gossiper to the node's other processes: its view (published each round, or asked for), and changes to its entry */
    membershipView: (node: string) => `${prefix}.node.${node}.membership.view`,
    membershipGet: (node: string) => `${prefix}.node.${node}.membership.get`,
    membershipControl: (node: string) => `${prefix}.node.${node}.membership.control`,
    /** a joining node pulls the keys of its new ranges from their current owners */
    handoffPull: (node: string) => `${prefix}.node.${node}.handoff.pull`,
    /** anti-entropy: another replica compares trees with this node and fetches keys from it */
    antiEntropy: (node: string) => `${prefix}.node.${node}.ae`,
    /** fault injection (nodes with --allow-faults): every node, or one */
    faults: `${prefix}.admin.faults`,
    nodeFaults: (node: string) => `${prefix}.node.${node}.admin.faults`,
    /** one key's stored versions on one replica (nodes with --allow-faults) */
    replicaInspect: (node: string) => `${prefix}.node.${node}.replica.inspect`,
    /** with --inspect: an actor's transitions, or sampled coordinator runs (actor `coordinator`); `${prefix}.trace.>` is all of them */
    trace: (node: string, actor: string) => `${prefix}.trace.${node}.${actor}`,
    traceAll: `${prefix}.trace.>`,
    status: `${prefix}.admin.status`,
    /** the status as one node sees it (its own view of the members) */
    nodeStatus: (node: string) => `${prefix}.node.${node}.admin.status`,
    /** bucket properties: set (spread by gossip), get one, list those set */
    bucketSet: `${prefix}.admin.bucket.set`,
    bucketGet: `${prefix}.admin.bucket.get`,
    bucketList: `${prefix}.admin.bucket.list`,
    ring: `${prefix}.admin.ring`,
    /** take a node that is down for good out of the ring (operators) */
    remove: `${prefix}.admin.remove`,
    queue: {
      kv: `${prefix}.kv`,
      admin: `${prefix}.admin`,
    },
  };
}

export type Subjects = ReturnType<typeof subjects>;

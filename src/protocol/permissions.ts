/**
 * Who may use which subjects, as NATS permissions: the model `dynamo up --secure`
 * and docker/nats.conf ship. Pure: it returns subject lists and config text.
 *
 * - node: every subject under the prefix (replica, gossip, handoff, anti-entropy,
 *   admin, trace) and `$SRV` (service discovery).
 * - client: the kv subjects (any node, one node, one bucket), the read-only admin
 *   subjects, change events and the nodes' change logs, and `$SRV` discovery; nothing
 *   else node-to-node.
 * - operator: a client's subjects, every admin subject, and the trace stream (the console).
 * - bucket: one bucket's own kv subjects and its change events (live), nothing else.
 *
 * Replies come back on `_INBOX.>`, so every role may subscribe there. A user who may
 * subscribe to `_INBOX.>` could read replies meant for others; a deployment that needs
 * to stop that gives each user its own inbox prefix (nats.js `inboxPrefix`) and
 * permission.
 */
export interface Permissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

export type Role = 'node' | 'client' | 'operator' | { readonly bucket: string };

const INBOX = '_INBOX.>';
const SERVICES = '$SRV.>';

function clientPublish(p: string): string[] {
  return [
    `${p}.kv.>`,
    `${p}.node.*.kv.>`,
    `${p}.admin.status`,
    `${p}.admin.ring`,
    `${p}.admin.bucket.get`,
    `${p}.admin.bucket.list`,
    `${p}.node.*.admin.ping`,
    `${p}.node.*.admin.status`,
    `${p}.node.*.watch.since`,
    SERVICES,
  ];
}

export function permissions(prefix: string, role: Role): Permissions {
  if (role === 'node') return { publish: [`${prefix}.>`, INBOX, SERVICES], subscribe: [`${prefix}.>`, INBOX, SERVICES] };
  if (role === 'client') return { publish: clientPublish(prefix), subscribe: [INBOX, `${prefix}.watch.>`] };
  if (role === 'operator') {
    return {
      publish: [...clientPublish(prefix), `${prefix}.admin.>`, `${prefix}.node.*.admin.>`, `${prefix}.node.*.replica.inspect`],
      subscribe: [INBOX, `${prefix}.watch.>`, `${prefix}.trace.>`],
    };
  }
  // A bucket's user watches it live; resuming reads a node's whole log, which this role may not.
  return { publish: [`${prefix}.kv.${role.bucket}.*`], subscribe: [INBOX, `${prefix}.watch.${role.bucket}`] };
}

export interface NatsUser {
  readonly user: string;
  /** the password as nats.conf should hold it: a literal, or `$VARIABLE` read from the server's environment */
  readonly password: string;
  readonly role: Role;
}

const quote = (s: string) => JSON.stringify(s);
const list = (xs: readonly string[]) => `[${xs.map(quote).join(', ')}]`;

/** The `authorization { users: [...] }` block of a nats-server config for `users`. */
export function authorizationBlock(prefix: string, users: readonly NatsUser[]): string {
  const lines = users.map((u) => {
    const p = permissions(prefix, u.role);
    // A `$NAME` password stays unquoted: nats-server then reads it from its environment.
    const password = /^\$[A-Z_][A-Z0-9_]*$/.test(u.password) ? u.password : quote(u.password);
    return `    { user: ${quote(u.user)}, password: ${password}, permissions: { publish: ${list(p.publish)}, subscribe: ${list(p.subscribe)} } }`;
  });
  return `authorization {\n  users: [\n${lines.join('\n')}\n  ]\n}\n`;
}

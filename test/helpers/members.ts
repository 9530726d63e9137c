import type { Transport } from '../../src/transport/transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import { waitFor } from './wait.js';

/** The state `viewer` gives `node` in its own status; undefined when it does not answer or does not list it. */
export async function memberState(t: Transport, viewer: string, node: string): Promise<string | undefined> {
  const status = await t
    .request(`dynamo.node.${viewer}.admin.status`, '', 3000)
    .then((d) => decodeJson<{ members: { id: string; state: string }[] }>(d))
    .catch(() => null);
  return status?.members.find((m) => m.id === node)?.state;
}

/** Until every one of `ids` sees every one of them up: a coordinator that still sees two members caps n (and so w) at 2. */
export function waitAllUp(t: Transport, ids: readonly string[], timeoutMs: number, what: string): Promise<void> {
  return waitFor(
    async () => {
      for (const viewer of ids) for (const n of ids) if ((await memberState(t, viewer, n)) !== 'up') return false;
      return true;
    },
    timeoutMs,
    what,
    100,
  );
}

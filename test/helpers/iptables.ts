import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findBinary, type ClusterServer } from '../../src/cli/servers.js';

const run = promisify(execFile);

/**
 * Real packet loss on loopback, for the partition nemeses: iptables rules in chains of
 * this test run's own, hooked into OUTPUT (every loopback packet passes it once) and
 * removed again by close(). Dropped packets are silent, as behind a failed switch:
 * TCP retransmits and hangs, and nobody gets a reset.
 *
 * A route between two servers is one TCP connection, dialed by either side. Packets to
 * or from a server's route port are those of the connections others dialed to it.
 * For those it dialed, every new connection a server's uid opens is marked in
 * conntrack with that server's number (its uid tells it apart: see ProcessCluster's
 * `routed`); the mark covers both directions of the connection.
 */
export class Iptables {
  private readonly filter: string;
  private readonly mangle: string;

  private constructor(
    private readonly bin: string,
    tag: string,
  ) {
    this.filter = `DYNF-${tag}`;
    this.mangle = `DYNM-${tag}`;
  }

  /**
   * Before the servers start (a route dialed earlier would go unmarked): the servers'
   * uids, in their order. Fails, saying why, where this machine cannot drop packets:
   * the nemeses must never pass without striking.
   */
  static async open(uids: readonly number[]): Promise<Iptables> {
    const bin = findBinary('iptables');
    if (!bin) throw new Error('iptables not found: the partition nemeses need it (apt-get install -y iptables) and root');
    if (process.getuid?.() !== 0) throw new Error('the partition nemeses need root to add iptables rules');
    await Iptables.removeOrphans(bin);
    const t = new Iptables(bin, String(process.pid));
    try {
      await t.ipt('-t', 'mangle', '-N', t.mangle);
      await t.ipt('-t', 'mangle', '-I', 'OUTPUT', '-j', t.mangle);
      await t.ipt('-N', t.filter);
      await t.ipt('-I', 'OUTPUT', '-j', t.filter);
      for (const [i, uid] of uids.entries())
        await t.ipt(
          '-t',
          'mangle',
          '-A',
          t.mangle,
          '-p',
          'tcp',
          '-m',
          'conntrack',
          '--ctstate',
          'NEW',
          '-m',
          'owner',
          '--uid-owner',
          String(uid),
          '-j',
          'CONNMARK',
          '--set-mark',
          String(i + 1),
        );
    } catch (e) {
      await t.close();
      throw new Error(`iptables cannot drop packets here: ${(e as Error).message}`, { cause: e });
    }
    return t;
  }

  /** Every route of `servers[index]`, both ways: it and the rest of the cluster stop hearing each other. */
  async cutRoutes(servers: readonly ClusterServer[], index: number): Promise<void> {
    await this.cutRoutePort(servers, index);
    await this.drop('-m', 'connmark', '--mark', String(index + 1));
  }

  /**
   * Only the route port, both ways: the routes others dialed to it hang, a route it
   * dialed itself stays up. Alone, a half partition that depends on who dialed whom
   * (which varies from run to run), so no nemesis uses it alone.
   */
  private async cutRoutePort(servers: readonly ClusterServer[], index: number): Promise<void> {
    const s = servers[index]!;
    await this.drop('-p', 'tcp', '--dport', String(s.clusterPort));
    await this.drop('-p', 'tcp', '--sport', String(s.clusterPort));
  }

  /** One way: what `servers[index]` sends on its routes is lost; what the others send it still arrives (but is never acknowledged). */
  async cutRoutesFrom(servers: readonly ClusterServer[], index: number): Promise<void> {
    const s = servers[index]!;
    await this.drop('-p', 'tcp', '--sport', String(s.clusterPort));
    await this.drop('-m', 'connmark', '--mark', String(index + 1), '-m', 'conntrack', '--ctdir', 'ORIGINAL');
  }

  /** The client port of a server, both ways: the clients connected to it hang, their processes alive. */
  async cutClientPort(port: number): Promise<void> {
    await this.drop('-p', 'tcp', '--dport', String(port));
    await this.drop('-p', 'tcp', '--sport', String(port));
  }

  /** Packets flow again (the conntrack marks stay, harmless without the drops). */
  async heal(): Promise<void> {
    await this.ipt('-F', this.filter);
  }

  /** Heals, and removes this run's chains. */
  async close(): Promise<void> {
    await this.ipt('-D', 'OUTPUT', '-j', this.filter).catch(() => {});
    await this.ipt('-F', this.filter).catch(() => {});
    await this.ipt('-X', this.filter).catch(() => {});
    await this.ipt('-t', 'mangle', '-D', 'OUTPUT', '-j', this.mangle).catch(() => {});
    await this.ipt('-t', 'mangle', '-F', this.mangle).catch(() => {});
    await this.ipt('-t', 'mangle', '-X', this.mangle).catch(() => {});
  }

  /** The chains of runs that died without closing theirs (killed mid-test): their rules would drop packets still. */
  private static async removeOrphans(bin: string): Promise<void> {
    const { stdout } = await run(bin, ['-w', '-S']);
    for (const m of stdout.matchAll(/^-N DYNF-(\d+)$/gm)) {
      const pid = Number(m[1]);
      try {
        process.kill(pid, 0);
      } catch {
        await new Iptables(bin, String(pid)).close();
      }
    }
  }

  /** How many packets the drop rules have dropped so far: proof that a cut struck. */
  async dropped(): Promise<number> {
    const { stdout } = await this.ipt('-L', this.filter, '-v', '-x', '-n');
    return stdout
      .split('\n')
      .filter((l) => l.includes('DROP'))
      .reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0]), 0);
  }

  private drop(...match: string[]) {
    return this.ipt('-A', this.filter, ...match, '-j', 'DROP');
  }

  private ipt(...args: string[]) {
    // -w: wait for the xtables lock rather than fail when another run holds it.
    return run(this.bin, ['-w', ...args]);
  }
}

import { execFile, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary, stopProcess } from '../../src/cli/servers.js';

/** A Docker engine for the container tests: the one that answers already, or one of the test's own. */
export interface DockerEngine {
  /** The environment the docker and docker-compose commands run with (DOCKER_HOST for an engine of our own). */
  readonly env: NodeJS.ProcessEnv;
  /** How this engine came to be, for the test's log. */
  readonly description: string;
  /** Stops an engine the test started and removes its files; leaves one it found alone. */
  stop(): Promise<void>;
}

const answers = (env: NodeJS.ProcessEnv) =>
  promisify(execFile)('docker', ['info', '--format', '{{.ServerVersion}}'], { env, timeout: 20_000 }).then(
    (r) => r.stdout.trim(),
    () => null,
  );

/**
 * The engine that `docker info` reaches (CI starts one: .ci/run), or else, as root, a private
 * dockerd in a temporary folder, with no bridge network and no iptables rules, as the test's own
 * nats-server and redis-servers are: started here, stopped afterwards. A machine with neither
 * gets an error that says what to install.
 */
export async function dockerEngine(): Promise<DockerEngine> {
  const version = await answers(process.env);
  if (version !== null) return { env: process.env, description: `the running Docker engine ${version}`, stop: async () => {} };
  const dockerd = findBinary('dockerd');
  if (dockerd === null || findBinary('docker') === null) {
    throw new Error('the container tests need a Docker engine: install docker.io and docker-compose with apt-get (.ci/run does)');
  }
  if (process.getuid?.() !== 0) {
    throw new Error('no Docker engine answers, and only root can start one: start dockerd --bridge=none --iptables=false, or run the tests as root');
  }
  // Short paths: the engine's sockets live under the exec root, and a socket path has at most 107 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'dkr-'));
  const log = join(dir, 'dockerd.log');
  const env = { ...process.env, DOCKER_HOST: `unix://${dir}/docker.sock` };
  const out = openSync(log, 'a');
  const child = spawn(
    dockerd,
    ['--bridge=none', '--iptables=false', `--data-root=${dir}/data`, `--exec-root=${dir}/exec`, `--pidfile=${dir}/docker.pid`, `--host=${env.DOCKER_HOST}`],
    { stdio: ['ignore', out, out] },
  );
  // The engine holds its own copy of the descriptor.
  closeSync(out);
  const stop = async () => {
    await stopProcess(child, 20_000);
    // The engine leaves the host's network namespace bind-mounted under its exec root (netns/default), and
    // a killed one may leave overlay mounts too: unmount, deepest first, before removing the folder.
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${dir}/`))
      .sort()
      .reverse();
    for (const m of mounts) await promisify(execFile)('umount', [m]).catch(() => promisify(execFile)('umount', ['-l', m]));
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await answers(env);
    if (v !== null) return { env, description: `a private Docker engine ${v} in ${dir}`, stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      const why = readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
      await stop();
      throw new Error(`dockerd did not start (${child.exitCode !== null ? `exit ${child.exitCode}` : 'no answer in 60 s'}):\n${why}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

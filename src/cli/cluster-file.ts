import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** What `dynamo up` records so client commands find the cluster and a later `up` can clean up after a crash. */
export interface ClusterFile {
  /** pid of the `dynamo up` process */
  readonly pid: number;
  readonly natsUrl: string;
  readonly prefix: string;
  /** every process `up` started, for cleanup */
  readonly children: readonly { readonly name: string; readonly pid: number }[];
  readonly nodes: readonly { readonly id: string; readonly redisUrl: string }[];
  /** `up --secure`: the file of variables that log a client in (never read by the CLI: a user sources it) */
  readonly clientEnvFile?: string;
}

export const DEFAULT_STATE_DIR = '.dynamo';

export function clusterFilePath(dir = DEFAULT_STATE_DIR): string {
  return resolve(join(dir, 'cluster.json'));
}

export function readClusterFile(dir = DEFAULT_STATE_DIR): ClusterFile | null {
  const p = clusterFilePath(dir);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as ClusterFile;
  } catch {
    return null;
  }
}

export function writeClusterFile(dir: string, file: ClusterFile): void {
  const p = clusterFilePath(dir);
  writeFileSync(`${p}.tmp`, JSON.stringify(file, null, 2));
  renameSync(`${p}.tmp`, p);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's command line, to make sure a recorded pid still is what we started. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

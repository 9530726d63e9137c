/**
 * CPU time of processes from /proc/PID/stat (utime + stime, fields 14 and 15), for CPU
 * per operation: sample before and after a measured window, divide by the operations.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SEC = 100;

export interface Proc {
  readonly name: string;
  readonly pid: number;
}

/** The CPU µs a process has used since it started (its threads included); 0 once it is gone. */
export function cpuMicros(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  return parseStatCpuMicros(stat);
}

/** utime + stime of a /proc/PID/stat line, in µs. The command name (field 2) may hold spaces, so count from its ')'. */
export function parseStatCpuMicros(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name, field 3 (state) is at index 0: utime (14) and stime (15) are at 11 and 12.
  const ticks = Number(fields[11]) + Number(fields[12]);
  if (!Number.isFinite(ticks)) throw new Error(`unreadable /proc stat line: ${stat.slice(0, 80)}`);
  return (ticks * 1e6) / TICKS_PER_SEC;
}

/** Each process's CPU µs now. */
export function sample(procs: readonly Proc[]): number[] {
  return procs.map((p) => cpuMicros(p.pid));
}

/** Each process's CPU µs between two samples. */
export function used(before: readonly number[], after: readonly number[]): number[] {
  return after.map((a, i) => a - before[i]!);
}

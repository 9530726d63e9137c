/** A progress bar: `[#####-----]  50% 5/10 keys`. */
export function bar(done: number, total: number, unit = 'keys'): string {
  const share = total > 0 ? Math.min(1, done / total) : 0;
  const width = 30;
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(share * 100)).padStart(3)}% ${done}/${total} ${unit}`;
}

/**
 * Progress on stderr: redrawn in place on a terminal, else one line per tenth of the way
 * (and per phase), so a log stays short.
 */
export function progressLine(unit = 'keys'): { show(phase: string, done: number, total: number): void; end(): void } {
  const tty = process.stderr.isTTY;
  let last = '';
  let drawn = false;
  return {
    show(phase, done, total) {
      const tenth = `${phase} ${total ? Math.floor((done / total) * 10) : 0}`;
      if (tty) {
        process.stderr.write(`\r${phase.padEnd(9)} ${bar(done, total, unit)}`);
        drawn = true;
      } else if (tenth !== last) process.stderr.write(`${phase} ${bar(done, total, unit)}\n`);
      last = tenth;
    },
    end() {
      if (drawn) process.stderr.write('\n');
      drawn = false;
    },
  };
}

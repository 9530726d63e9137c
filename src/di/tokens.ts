/** Injection tokens for every boundary of a node (interfaces have no runtime type to inject by). */
export const TOKENS = {
  Config: Symbol('Config'),
  Transport: Symbol('Transport'),
  Storage: Symbol('Storage'),
  Clock: Symbol('Clock'),
  Membership: Symbol('Membership'),
  Random: Symbol('Random'),
  Logger: Symbol('Logger'),
  /** { injector }: the fault-injecting transport when the node allows faults, else null */
  Faults: Symbol('Faults'),
  /** application resolvers by name (--resolver NAME=FILE), beside the built-in ones */
  Resolvers: Symbol('Resolvers'),
} as const;

/** Randomness, injected so a simulation can replay a run from its seed. */
export type Random = () => number;

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const stderrLogger = (nodeId: string): Logger => {
  const line = (level: string, message: string) => process.stderr.write(`${new Date().toISOString()} ${level} [${nodeId}] ${message}\n`);
  return { info: (m) => line('info', m), warn: (m) => line('warn', m), error: (m) => line('error', m) };
};

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

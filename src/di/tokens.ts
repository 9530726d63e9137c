import { pino } from 'pino';
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
  /** () => the node's lifecycle actor (DynamoNode), for the parts it depends on that report its state */
  Lifecycle: Symbol('Lifecycle'),
  /** the node's Subjects, built once from its prefix */
  Subjects: Symbol('Subjects'),
} as const;

/** Randomness, injected so a simulation can replay a run from its seed. */
export type Random = () => number;

/** Log lines for operators: lifecycle, membership and failures, never one per request. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Structured JSON lines (pino) on stderr, each with the node's id; written synchronously so a crash loses none. */
export const jsonLogger = (nodeId: string): Logger => {
  const log = pino(
    { base: { node: nodeId }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    pino.destination({ fd: 2, sync: true }),
  );
  return {
    info: (m, f) => log.info(f ?? {}, m),
    warn: (m, f) => log.warn(f ?? {}, m),
    error: (m, f) => log.error(f ?? {}, m),
  };
};

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import { SECURITY_SETTINGS, securityProblem, type NatsSecurity } from '../transport/nats-security.js';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly help: string;
  readonly default?: string | boolean;
  /** the environment variable it falls back to, when not DYNAMO_<FLAG>; null for none */
  readonly env?: string | null;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** `--nats-url` reads DYNAMO_NATS_URL when not given; `--nats` reads DYNAMO_NATS_URL too (see ENV_ALIASES). */
const ENV_ALIASES: Readonly<Record<string, string>> = {
  nats: 'DYNAMO_NATS_URL',
  redis: 'DYNAMO_REDIS_URL',
  id: 'DYNAMO_NODE_ID',
  ...Object.fromEntries(SECURITY_SETTINGS.map((s) => [s.flag, s.env])),
};

/** How to log in to NATS and check its TLS: on every command that connects to NATS. */
export const NATS_SECURITY_OPTIONS: OptionSpecs = Object.fromEntries(SECURITY_SETTINGS.map((s) => [s.flag, { type: 'string', help: s.help }]));

/** The NATS login and TLS settings given as flags or variables; a usage error when they do not go together. */
export function securityFlags(values: Record<string, unknown>): NatsSecurity {
  const out: Record<string, string> = {};
  for (const s of SECURITY_SETTINGS) {
    const v = values[s.flag];
    if (typeof v === 'string' && v !== '') out[s.field] = v;
  }
  const problem = securityProblem(out);
  if (problem !== null) throw new UsageError(problem);
  return out;
}

export function envName(flag: string, spec?: OptionSpec): string | null {
  if (spec?.env !== undefined) return spec.env;
  return ENV_ALIASES[flag] ?? `DYNAMO_${flag.replace(/-/g, '_').toUpperCase()}`;
}

/**
 * Parse flags strictly (an unknown flag is a usage error). Every flag falls back to
 * its environment variable, then to its default.
 */
export function parseFlags(argv: string[], specs: OptionSpecs, env: NodeJS.ProcessEnv = process.env) {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, { type: s.type }])),
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [k, s] of Object.entries(specs)) {
    const given = parsed.values[k];
    const name = envName(k, s);
    const fromEnv = name === null ? undefined : env[name];
    if (given !== undefined) values[k] = given as string | boolean;
    else if (fromEnv !== undefined) values[k] = s.type === 'boolean' ? /^(1|true|yes)$/i.test(fromEnv) : fromEnv;
    else values[k] = s.default;
  }
  return { values, positionals: parsed.positionals };
}

export function intFlag(values: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${String(v)}"`);
  return n;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration flag in ms: `500ms`, `30s`, `5m`, `2h`, `1d`, or a bare number of ms; whole ms from `min` to `max`. */
export function durationFlag(values: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(v).trim());
  const ms = m === null ? Number.NaN : Number(m[1]) * (DURATION_UNITS[m[2] ?? 'ms'] ?? Number.NaN);
  if (!Number.isInteger(ms) || ms < min || ms > max)
    throw new UsageError(`--${name} must be a duration such as 500ms, 30s, 5m, 2h or 1d, from ${min} ms to ${max} ms; got "${String(v)}"`);
  return ms;
}

export function numberFlag(values: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}, got "${String(v)}"`);
  return n;
}

/** A flag that has a default: missing only if its spec lost it, which is a usage error all the same. */
export function requiredIntFlag(values: Record<string, unknown>, name: string, min: number, max: number): number {
  const n = intFlag(values, name, min, max);
  if (n === undefined) throw new UsageError(`--${name} is required`);
  return n;
}

export function requiredNumberFlag(values: Record<string, unknown>, name: string, min: number, max: number): number {
  const n = numberFlag(values, name, min, max);
  if (n === undefined) throw new UsageError(`--${name} is required`);
  return n;
}

export function optionsHelp(specs: OptionSpecs): string {
  const flags = Object.entries(specs).map(
    ([k, s]) => [`  --${k}${s.type === 'string' ? ' VALUE' : ''}`, `${s.help}${envName(k, s) === null ? '' : ` [${envName(k, s)}]`}`] as const,
  );
  // One column for the help, wide enough for the longest flag (--anti-entropy-max-message-bytes VALUE).
  const width = Math.max(26, ...flags.map(([f]) => f.length + 2));
  return flags.map(([f, help]) => `${f.padEnd(width)}${help}`).join('\n');
}

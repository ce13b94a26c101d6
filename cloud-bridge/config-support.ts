/**
 * What every reefer-edge configuration (the gateway's, the bridge's) does the same way: merging flag
 * and environment strings into the parsed file, turning validation issues into messages that name the
 * key, the value and what was expected (never showing a secret), and freezing the result.
 */
import { SASL_PASSWORD_ENV } from './kafka-flags.js';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export type FlagKind = 'string' | 'number' | 'list';

/** Sets a dotted key (`mqtt.port`) in a plain object, creating the sections on the way. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

export function getPath(source: unknown, path: readonly PropertyKey[]): unknown {
  let node = source;
  for (const part of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

/** Converts a flag or environment string to the key's type; a bad number stays a string so validation names it. */
export function convertFlag(kind: FlagKind, raw: string): unknown {
  if (kind === 'number') return /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
  if (kind === 'list') return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  return raw;
}

/** A flag (or environment variable) and the dotted configuration key it sets. */
export interface FlagSpec {
  key: string;
  kind: FlagKind;
  help: string;
}

/** Sets each value given (not undefined) at its flag's key in `merged`, converted to the key's kind. */
export function applyFlags(merged: Record<string, unknown>, specs: Readonly<Record<string, FlagSpec>>, values: Readonly<Record<string, string | undefined>>): void {
  for (const [flag, raw] of Object.entries(values)) {
    const spec = specs[flag];
    if (spec && raw !== undefined) setPath(merged, spec.key, convertFlag(spec.kind, raw));
  }
}

/**
 * The Kafka SASL password from the environment (REEFER_KAFKA_SASL_PASSWORD) over the file's, for a
 * configuration whose kafka.sasl section names the mechanism and user: the secret can then stay out of
 * the file (a container's secret, a systemd credential). Ignored without that section.
 */
export function applySaslPasswordEnv(merged: Record<string, unknown>, env: Readonly<Record<string, string | undefined>> | undefined): void {
  const password = env?.[SASL_PASSWORD_ENV];
  const sasl = getPath(merged, ['kafka', 'sasl']);
  if (password && typeof sasl === 'object' && sasl !== null && !Array.isArray(sasl)) setPath(merged, 'kafka.sasl.password', password);
}

export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A copy of the parsed file to merge into, or why the file is not a mapping of keys. */
export function fileMapping(file: unknown, fileName: string | undefined): { ok: true; merged: Record<string, unknown> } | { ok: false; problem: string } {
  if (file === undefined || file === null) return { ok: true, merged: {} };
  if (typeof file !== 'object' || Array.isArray(file)) {
    return { ok: false, problem: `${fileName ?? 'config file'}: expected a mapping of keys at the top level, got ${describeValue(file)}` };
  }
  return { ok: true, merged: structuredClone(file) as Record<string, unknown> };
}

/** One message per validation issue: `key: what was expected, got value` (secrets shown as hidden). */
export function describeIssues(issues: readonly z.core.$ZodIssue[], merged: unknown, secretKeys: ReadonlySet<PropertyKey>): string[] {
  const problems: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(`${[...issue.path, key].join('.')}: unknown key`);
      continue;
    }
    const key = issue.path.join('.') || '(top level)';
    const shown = secretKeys.has(issue.path[issue.path.length - 1]!) ? 'a hidden value' : describeValue(getPath(merged, issue.path));
    problems.push(`${key}: ${issue.message.replace(/^Invalid input: /, '')}, got ${shown}`);
  }
  return problems;
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Reads and parses a YAML configuration file given with --config; the problem names the file and the cause. */
export function readConfigFile(path: string | undefined): { ok: true; file: unknown } | { ok: false; problem: string } {
  if (path === undefined) return { ok: true, file: undefined };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { ok: false, problem: `--config: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}` };
  }
  try {
    return { ok: true, file: parseYaml(text) };
  } catch (error) {
    return { ok: false, problem: `${path}: not valid YAML: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/**
 * TLS to a server the gateway or the bridge connects to: which CAs sign its certificate, a client
 * certificate when it wants one (with its key), and whether to check it at all. `server` names the
 * server's certificate(s), `client` the client certificate, `requirers` who may ask for one.
 */
export function clientTlsSchema(text: { server: string; client: string; requirers: string }) {
  return z
    .object({
      caFile: z.string().min(1).optional().describe(`PEM file of the CAs that sign ${text.server}; the system's CAs when absent.`),
      certFile: z.string().min(1).optional().describe(`PEM file of ${text.client}, for ${text.requirers} that require one (with keyFile).`),
      keyFile: z.string().min(1).optional().describe('PEM file of its private key.'),
      rejectUnauthorized: z.boolean().default(true).describe(`Check ${text.server}; false only to diagnose, never in production.`),
    })
    .strict()
    .refine((tls) => (tls.certFile === undefined) === (tls.keyFile === undefined), { path: ['keyFile'], message: 'expected certFile and keyFile together' });
}

/** TLS to Kafka brokers, as the gateway's and the bridge's `kafka.tls` take it. */
export const kafkaTlsSchema = clientTlsSchema({ server: "the brokers' certificates", client: 'a client certificate', requirers: 'brokers' });

/** SASL to Kafka brokers, as the gateway's and the bridge's `kafka.sasl` take it. */
export const kafkaSaslSchema = z
  .object({
    mechanism: z.enum(['scram-sha-512', 'scram-sha-256', 'plain']).describe('Required: SASL mechanism; plain sends the password itself, so it needs kafka.tls.'),
    username: z.string().min(1).describe('Required: Kafka user name.'),
    password: z.string().min(1).describe('Required: Kafka password; never logged. The environment variable REEFER_KAFKA_SASL_PASSWORD, when set, takes its place, so the password can stay out of the file.'),
  })
  .strict();

/** Refuses SASL plain without TLS: it would send the password in the clear. For a `kafka` section's superRefine. */
export function requireTlsForPlainSasl(kafka: { tls?: unknown; sasl?: { mechanism: string } }, ctx: z.RefinementCtx): void {
  if (kafka.sasl?.mechanism === 'plain' && kafka.tls === undefined) {
    ctx.addIssue({ code: 'custom', path: ['sasl', 'mechanism'], message: 'expected kafka.tls with plain, which sends the password itself' });
  }
}

/** The `log` section of the gateway's and the bridge's configuration. */
export const logSectionSchema = z
  .object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level.'),
  })
  .strict()
  .prefault({});

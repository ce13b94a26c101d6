/**
 * The schema registry adapter: the only file that speaks HTTP to a registry, through Node's fetch.
 * It uses the part of the Confluent Schema Registry API that Confluent's registry and Apicurio's
 * `/apis/ccompat/v7` both serve: register a schema under a subject, fetch a schema by id, set a
 * subject's compatibility level. Ids go through a SchemaIdCache first, so a producer that has
 * registered its schema once encodes without the registry from then on.
 */
import type { Logger } from 'pino';
import { checkCompatibility } from '../schemas/compatibility.js';
import { MAX_SCHEMA_ID } from '../schemas/confluent-framing.js';
import { crc64Avro, parsingCanonicalForm } from '../schemas/fingerprint.js';
import type { SchemaIdCache, SchemaIdKey } from './schema-id-cache.js';

export interface SchemaRegistryOptions {
  /**
   * Base URL of the Confluent-compatible API, without a trailing slash: e.g.
   * `http://registry:8081` for Confluent's, `http://registry:8080/apis/ccompat/v7` for Apicurio's.
   */
  url: string;
  /** Time allowed for one request, connection included; a hung registry counts as unreachable. Default 5000. */
  requestTimeoutMs?: number;
}

export interface SchemaRegistryDeps {
  cache: SchemaIdCache;
  logger?: Logger;
}

/** Confluent's names for the levels a subject can enforce on each new version. */
export type RegistryCompatibility = 'NONE' | 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE';

export interface SchemaRegistryClient {
  /**
   * The id of `schema` (parsed JSON Avro) under `subject`. A cached id is returned without touching
   * the network; otherwise the schema is registered (the registry returns the existing id if it
   * already has it) and the id cached. Rejects with a SchemaRegistryError: retriable when the
   * registry could not be reached, not when it refused the schema.
   */
  register(subject: string, schema: object): Promise<number>;
  /** The cached id of `schema` under `subject`, without any request; undefined if none yet. */
  cachedId(subject: string, schema: object): number | undefined;
  /** The schema text registered under `id`, from memory after the first fetch (ids never change meaning). */
  schemaById(id: number): Promise<string>;
  setCompatibility(subject: string, level: RegistryCompatibility): Promise<void>;
  /** Aborts requests in flight; later calls reject. Safe to call twice. */
  close(): Promise<void>;
}

export type SchemaRegistryErrorCode =
  /** Not reached, timed out, or answered 5xx, 408 or 429: worth trying again later. */
  | 'REEFER_REGISTRY_UNREACHABLE'
  /** Answered that the request is wrong: an incompatible or invalid schema, or no permission. */
  | 'REEFER_REGISTRY_REJECTED'
  /** No schema has the id asked for. */
  | 'REEFER_REGISTRY_NOT_FOUND'
  /** Answered something that is not the Confluent API. */
  | 'REEFER_REGISTRY_BAD_RESPONSE'
  | 'REEFER_REGISTRY_CLOSED';

export class SchemaRegistryError extends Error {
  readonly code: SchemaRegistryErrorCode;
  readonly retriable: boolean;
  /** HTTP status, when the registry answered. */
  readonly status: number | undefined;
  /** The registry's own error code (e.g. 409 incompatible, 40403 schema not found), when it sent one. */
  readonly registryErrorCode: number | undefined;
  constructor(
    code: SchemaRegistryErrorCode,
    message: string,
    details: { status?: number; registryErrorCode?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'SchemaRegistryError';
    this.code = code;
    this.retriable = code === 'REEFER_REGISTRY_UNREACHABLE';
    this.status = details.status;
    this.registryErrorCode = details.registryErrorCode;
  }
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

export function createSchemaRegistryClient(options: SchemaRegistryOptions, deps: SchemaRegistryDeps): SchemaRegistryClient {
  const baseUrl = options.url.replace(/\/+$/, '');
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const logger = deps.logger?.child({ component: 'schema-registry' });
  const closing = new AbortController();
  const schemasById = new Map<number, string>();
  const inFlight = new Map<string, Promise<number>>();

  function keyOf(subject: string, schema: object): SchemaIdKey {
    return { registryUrl: baseUrl, subject, fingerprint: crc64Avro(parsingCanonicalForm(schema)).toString('hex') };
  }

  async function request(method: string, path: string, body?: unknown): Promise<unknown> {
    if (closing.signal.aborted) throw new SchemaRegistryError('REEFER_REGISTRY_CLOSED', 'the schema registry client is closed');
    const url = `${baseUrl}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { accept: `${CONTENT_TYPE}, application/json`, ...(body === undefined ? {} : { 'content-type': CONTENT_TYPE }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any([closing.signal, AbortSignal.timeout(timeoutMs)]),
      });
    } catch (err) {
      if (closing.signal.aborted) throw new SchemaRegistryError('REEFER_REGISTRY_CLOSED', 'the schema registry client is closed', { cause: err });
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      const reason = timedOut ? `no answer within ${timeoutMs} ms` : describeNetworkError(err);
      throw new SchemaRegistryError('REEFER_REGISTRY_UNREACHABLE', `${method} ${url}: ${reason}`, { cause: err });
    }
    const text = await response.text().catch(() => '');
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (response.ok) {
      if (parsed === undefined) {
        throw new SchemaRegistryError('REEFER_REGISTRY_BAD_RESPONSE', `${method} ${url}: answered ${response.status} without a JSON body`, { status: response.status });
      }
      return parsed;
    }
    const registryErrorCode = typeof (parsed as { error_code?: unknown })?.error_code === 'number' ? (parsed as { error_code: number }).error_code : undefined;
    const message = typeof (parsed as { message?: unknown })?.message === 'string' ? (parsed as { message: string }).message : text.slice(0, 300);
    const status = response.status;
    const code: SchemaRegistryErrorCode =
      status >= 500 || status === 408 || status === 429 ? 'REEFER_REGISTRY_UNREACHABLE' : status === 404 ? 'REEFER_REGISTRY_NOT_FOUND' : 'REEFER_REGISTRY_REJECTED';
    throw new SchemaRegistryError(code, `${method} ${url}: ${status}${registryErrorCode === undefined ? '' : ` (error ${registryErrorCode})`}: ${message}`, {
      status,
      registryErrorCode,
    });
  }

  async function registerNow(key: SchemaIdKey, schema: object): Promise<number> {
    const name = describeSchema(schema);
    let answer: unknown;
    try {
      answer = await request('POST', `/subjects/${encodeURIComponent(key.subject)}/versions`, { schema: JSON.stringify(schema) });
    } catch (err) {
      if (err instanceof SchemaRegistryError && err.retriable) {
        throw new SchemaRegistryError(
          err.code,
          `cannot encode with ${name} (fingerprint ${key.fingerprint}) under subject ${key.subject}: its id is not cached yet and the ` +
            `registry is unreachable (${err.message}); encoding can start once the registry answers one registration`,
          { status: err.status, registryErrorCode: err.registryErrorCode, cause: err },
        );
      }
      if (err instanceof SchemaRegistryError && err.code === 'REEFER_REGISTRY_REJECTED') {
        const diagnosis = err.status === 409 ? await diagnoseConflict(key.subject, schema) : '';
        throw new SchemaRegistryError(err.code, `the registry refused ${name} under subject ${key.subject}${diagnosis}: ${err.message}`, {
          status: err.status,
          registryErrorCode: err.registryErrorCode,
          cause: err,
        });
      }
      throw err;
    }
    const id = (answer as { id?: unknown }).id;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_SCHEMA_ID) {
      throw new SchemaRegistryError('REEFER_REGISTRY_BAD_RESPONSE', `registering under ${key.subject} answered ${JSON.stringify(answer).slice(0, 200)}, expected {"id": <int>}`);
    }
    deps.cache.put(key, id);
    schemasById.set(id, JSON.stringify(schema));
    logger?.info({ subject: key.subject, fingerprint: key.fingerprint, id }, 'schema registered');
    return id;
  }

  /**
   * Registries point at a refused field by its position (`/fields/3/type`); comparing with the
   * subject's latest version here names it. Best effort: the refusal stands whatever this finds.
   */
  async function diagnoseConflict(subject: string, schema: object): Promise<string> {
    try {
      const latest = (await request('GET', `/subjects/${encodeURIComponent(subject)}/versions/latest`)) as { schema?: unknown; version?: unknown };
      if (typeof latest.schema !== 'string') return '';
      const report = checkCompatibility(JSON.parse(latest.schema), schema);
      const problems = [
        report.backward === null ? undefined : `backward: ${report.backward}`,
        report.forward === null ? undefined : `forward: ${report.forward}`,
      ].filter((p) => p !== undefined);
      return problems.length === 0 ? '' : ` (against its latest version ${String(latest.version)}: ${problems.join('; ')})`;
    } catch {
      return '';
    }
  }

  return {
    cachedId: (subject, schema) => deps.cache.get(keyOf(subject, schema)),

    async register(subject, schema) {
      const key = keyOf(subject, schema);
      const cached = deps.cache.get(key);
      if (cached !== undefined) return cached;
      const text = `${key.subject}\n${key.fingerprint}`;
      let pending = inFlight.get(text);
      if (!pending) {
        pending = registerNow(key, schema).finally(() => inFlight.delete(text));
        inFlight.set(text, pending);
      }
      return pending;
    },

    async schemaById(id) {
      const known = schemasById.get(id);
      if (known !== undefined) return known;
      const answer = await request('GET', `/schemas/ids/${id}`);
      const schema = (answer as { schema?: unknown }).schema;
      const type = (answer as { schemaType?: unknown }).schemaType;
      if (typeof schema !== 'string') {
        throw new SchemaRegistryError('REEFER_REGISTRY_BAD_RESPONSE', `schema ${id}: answered ${JSON.stringify(answer).slice(0, 200)}, expected {"schema": "<text>"}`);
      }
      if (type !== undefined && type !== 'AVRO') {
        throw new SchemaRegistryError('REEFER_REGISTRY_REJECTED', `schema ${id} is a ${String(type)} schema, not Avro`);
      }
      schemasById.set(id, schema);
      return schema;
    },

    async setCompatibility(subject, level) {
      await request('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
    },

    async close() {
      closing.abort();
    },
  };
}

function describeSchema(schema: object): string {
  const { name, namespace } = schema as { name?: unknown; namespace?: unknown };
  if (typeof name !== 'string') return 'the schema';
  return typeof namespace === 'string' && !name.includes('.') ? `${namespace}.${name}` : name;
}

/** fetch reports every network failure as "fetch failed"; the reason is in its cause. */
function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (cause && typeof cause.code === 'string') return `${cause.code}${typeof cause.message === 'string' ? ` (${cause.message})` : ''}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * ReeferTelemetry in the Confluent wire format: the registry id of the writer version in front of
 * the Avro body. Encoding needs the registry only until each version's id is cached; decoding
 * fetches each writer schema once by id and resolves it to the version the consumer reads.
 */
import {
  TELEMETRY_SCHEMA_VERSIONS,
  decodeTelemetryWithWriterSchema,
  encodeTelemetryBody,
  type TelemetryDecodeResult,
} from '../schemas/avro.js';
import { frameConfluent, unframeConfluent } from '../schemas/confluent-framing.js';
import type { TelemetryByVersion, TelemetryVersion } from '../schemas/reefer-telemetry-v2.js';
import type { SchemaRegistryClient } from './schema-registry.js';

/** The subject a topic's values are registered under (Confluent's default TopicNameStrategy). */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

export interface ConfluentTelemetryOptions {
  /** Subject the ReeferTelemetry versions are registered under, e.g. `valueSubject('reefer-telemetry')`. */
  subject: string;
}

export interface ConfluentTelemetryDeps {
  registry: SchemaRegistryClient;
}

export interface ConfluentTelemetry {
  /** The registry id of a version under the subject: cached, or registered now. Rejects like SchemaRegistryClient.register. */
  schemaId(version: TelemetryVersion): Promise<number>;
  /** A record as `00` + id + Avro body of the writer version. Rejects like schemaId; throws on a record that does not fit. */
  encode<V extends TelemetryVersion>(record: TelemetryByVersion[V], writerVersion: V): Promise<Buffer>;
  /** Frames an Avro body already encoded with the writer version (as the outbox stores it). */
  frameBody(body: Buffer, writerVersion: TelemetryVersion): Promise<Buffer>;
  /**
   * Decodes a Confluent-framed value as the reader version, whichever version (even one newer than
   * this build) wrote it. A value that is not a valid record comes back as `ok: false`; a writer
   * schema that cannot be fetched rejects with the registry's error, as nothing can be concluded.
   */
  decode<V extends TelemetryVersion>(value: Buffer, readerVersion: V): Promise<TelemetryDecodeResult<V>>;
}

export function createConfluentTelemetry(options: ConfluentTelemetryOptions, deps: ConfluentTelemetryDeps): ConfluentTelemetry {
  const { registry } = deps;
  const schemaId = (version: TelemetryVersion) => registry.register(options.subject, TELEMETRY_SCHEMA_VERSIONS[version].schema);
  return {
    schemaId,
    async encode(record, writerVersion) {
      const id = await schemaId(writerVersion);
      return frameConfluent(id, encodeTelemetryBody(record, writerVersion));
    },
    async frameBody(body, writerVersion) {
      return frameConfluent(await schemaId(writerVersion), body);
    },
    async decode(value, readerVersion) {
      const framed = unframeConfluent(value);
      if (!framed.ok) return framed;
      const writerSchema = await registry.schemaById(framed.schemaId);
      return decodeTelemetryWithWriterSchema(framed.body, writerSchema, readerVersion);
    },
  };
}

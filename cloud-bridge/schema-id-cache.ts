/**
 * Where the edge keeps the schema ids a registry handed out, so encoding goes on while the
 * registry is unreachable. A small port: the gateway can back it with its SQLite outbox; an
 * in-memory and a file-backed implementation live here.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

/**
 * What an id is known by. The registry is part of the key because ids are only meaningful within
 * one registry: a gateway pointed at another registry must not reuse the old one's ids. The subject
 * is part of it because registering under a subject is what makes the registry check that subject's
 * compatibility rule; the same schema under another subject is registered there too.
 */
export interface SchemaIdKey {
  /** The registry's base URL, as configured. */
  readonly registryUrl: string;
  readonly subject: string;
  /** Hex CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form. */
  readonly fingerprint: string;
}

export interface SchemaIdCache {
  get(key: SchemaIdKey): number | undefined;
  /** Durable when it returns, for implementations that persist: the id must survive a power cut. */
  put(key: SchemaIdKey, id: number): void;
}

function keyText(key: SchemaIdKey): string {
  return JSON.stringify([key.registryUrl, key.subject, key.fingerprint]);
}

export function createMemorySchemaIdCache(): SchemaIdCache {
  const ids = new Map<string, number>();
  return {
    get: (key) => ids.get(keyText(key)),
    put(key, id) {
      ids.set(keyText(key), id);
    },
  };
}

export interface FileSchemaIdCacheOptions {
  /** JSON file holding the ids; created on the first put, with its folder. */
  path: string;
  /** Told when an existing file cannot be read and the cache starts empty. */
  logger?: Logger;
}

interface CacheFile {
  format: 1;
  entries: { registryUrl: string; subject: string; fingerprint: string; id: number }[];
}

/**
 * Ids in one small JSON file, rewritten whole on each new id (a gateway learns a handful in its
 * life) through a temporary file, fsync and rename, so a power cut leaves the old file or the new
 * one, never half of one.
 */
export function createFileSchemaIdCache(options: FileSchemaIdCacheOptions): SchemaIdCache {
  const ids = new Map<string, { key: SchemaIdKey; id: number }>();
  for (const entry of load(options)) ids.set(keyText(entry), { key: entry, id: entry.id });

  function save(): void {
    const file: CacheFile = { format: 1, entries: [...ids.values()].map(({ key, id }) => ({ ...key, id })) };
    mkdirSync(dirname(options.path), { recursive: true });
    const temp = `${options.path}.tmp`;
    const fd = openSync(temp, 'w');
    try {
      writeSync(fd, `${JSON.stringify(file, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, options.path);
    // The rename itself is durable only once the folder is synced.
    const dir = openSync(dirname(options.path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  return {
    get: (key) => ids.get(keyText(key))?.id,
    put(key, id) {
      const text = keyText(key);
      if (ids.get(text)?.id === id) return;
      ids.set(text, { key: { registryUrl: key.registryUrl, subject: key.subject, fingerprint: key.fingerprint }, id });
      save();
    },
  };
}

/**
 * A missing file is an empty cache. So is an unreadable one, with a warning: the ids are only a
 * copy of what the registry knows, and refusing to start would cost more than registering again
 * once the registry answers.
 */
function load(options: FileSchemaIdCacheOptions): CacheFile['entries'] {
  let text: string;
  try {
    text = readFileSync(options.path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    options.logger?.warn({ err, path: options.path }, 'schema id cache unreadable; starting empty');
    return [];
  }
  try {
    const parsed = JSON.parse(text) as Partial<CacheFile>;
    if (parsed.format !== 1 || !Array.isArray(parsed.entries)) throw new Error(`expected {"format": 1, "entries": [...]}`);
    return parsed.entries.filter(
      (e) =>
        typeof e === 'object' &&
        e !== null &&
        typeof e.registryUrl === 'string' &&
        typeof e.subject === 'string' &&
        typeof e.fingerprint === 'string' &&
        Number.isInteger(e.id),
    );
  } catch (err) {
    options.logger?.warn({ err, path: options.path }, 'schema id cache is not valid JSON of the expected form; starting empty');
    return [];
  }
}

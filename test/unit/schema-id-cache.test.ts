import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createFileSchemaIdCache, createMemorySchemaIdCache, type SchemaIdCache, type SchemaIdKey } from '../../cloud-bridge/schema-id-cache.js';

const folders: string[] = [];
afterEach(() => {
  while (folders.length > 0) rmSync(folders.pop()!, { recursive: true, force: true });
});
function tempFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'reefer-schema-ids-'));
  folders.push(dir);
  return dir;
}

const key: SchemaIdKey = { registryUrl: 'http://registry:8081', subject: 'reefer-telemetry-value', fingerprint: 'd581d626a2cca6d3' };

/** What every SchemaIdCache must do, whatever keeps the ids. */
function contract(name: string, create: () => SchemaIdCache): void {
  describe(`${name} (SchemaIdCache contract)`, () => {
    it('returns undefined for an id it was never given', () => {
      expect(create().get(key)).toBeUndefined();
    });

    it('returns the id it was given, also for an equal key built anew', () => {
      const cache = create();
      cache.put(key, 41);
      expect(cache.get({ ...key })).toBe(41);
    });

    it('keeps ids apart by registry, subject and fingerprint', () => {
      const cache = create();
      cache.put(key, 1);
      cache.put({ ...key, registryUrl: 'http://other:8081' }, 2);
      cache.put({ ...key, subject: 'reefer-alerts-value' }, 3);
      cache.put({ ...key, fingerprint: '0872f427bb7ce2f3' }, 4);
      expect([
        cache.get(key),
        cache.get({ ...key, registryUrl: 'http://other:8081' }),
        cache.get({ ...key, subject: 'reefer-alerts-value' }),
        cache.get({ ...key, fingerprint: '0872f427bb7ce2f3' }),
      ]).toEqual([1, 2, 3, 4]);
    });

    it('keeps the latest id given for a key', () => {
      const cache = create();
      cache.put(key, 5);
      cache.put(key, 6);
      expect(cache.get(key)).toBe(6);
    });
  });
}

contract('memory', createMemorySchemaIdCache);
contract('file', () => createFileSchemaIdCache({ path: join(tempFolder(), 'ids', 'schema-ids.json') }));

describe('file schema id cache', () => {
  it('keeps its ids across a restart, as a gateway needs when it starts while the registry is down', () => {
    const path = join(tempFolder(), 'schema-ids.json');
    const first = createFileSchemaIdCache({ path });
    first.put(key, 7);
    first.put({ ...key, fingerprint: '0872f427bb7ce2f3' }, 8);
    const reopened = createFileSchemaIdCache({ path });
    expect(reopened.get(key)).toBe(7);
    expect(reopened.get({ ...key, fingerprint: '0872f427bb7ce2f3' })).toBe(8);
  });

  it('writes through a temporary file it leaves nothing of', () => {
    const dir = tempFolder();
    createFileSchemaIdCache({ path: join(dir, 'schema-ids.json') }).put(key, 7);
    expect(readdirSync(dir)).toEqual(['schema-ids.json']);
    expect(JSON.parse(readFileSync(join(dir, 'schema-ids.json'), 'utf8'))).toEqual({ format: 1, entries: [{ ...key, id: 7 }] });
  });

  it('does not write when told an id it already has', () => {
    const path = join(tempFolder(), 'schema-ids.json');
    const cache = createFileSchemaIdCache({ path });
    cache.put(key, 7);
    rmSync(path);
    cache.put(key, 7);
    expect(existsSync(path)).toBe(false);
  });

  it('starts empty with a warning from a damaged file, and replaces it on the next id', () => {
    const path = join(tempFolder(), 'schema-ids.json');
    writeFileSync(path, '{"format": 1, "entr');
    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString('utf8'));
          done();
        },
      }),
    );
    const cache = createFileSchemaIdCache({ path, logger });
    expect(cache.get(key)).toBeUndefined();
    expect(lines.map((l) => (JSON.parse(l) as { msg: string; path: string }).msg)).toEqual([
      'schema id cache is not valid JSON of the expected form; starting empty',
    ]);
    cache.put(key, 9);
    expect(createFileSchemaIdCache({ path }).get(key)).toBe(9);
  });
});

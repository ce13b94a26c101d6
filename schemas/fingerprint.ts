/**
 * Schema fingerprints as the Avro specification defines them: the Parsing Canonical Form of a schema
 * and its CRC-64-AVRO (Rabin) fingerprint, the 8 bytes that single-object encoding puts in front of
 * every body. Pure: no Avro library, so any consumer can check these values against its own.
 */
import { Buffer } from 'node:buffer';

/** The polynomial's "empty" value from the specification's reference implementation. */
const CRC64_AVRO_EMPTY = 0xc15d213aa4d7a795n;

const MASK_64 = 0xffffffffffffffffn;

/*
 * The 64-bit table is kept as two 32-bit halves so the byte loop runs on plain numbers:
 * BigInt arithmetic per byte would be two orders of magnitude slower, and a schema is
 * fingerprinted at start-up and again whenever a consumer meets a new one.
 */
const TABLE_LOW = new Uint32Array(256);
const TABLE_HIGH = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let fp = BigInt(i);
  for (let j = 0; j < 8; j++) {
    fp = (fp >> 1n) ^ (CRC64_AVRO_EMPTY & -(fp & 1n) & MASK_64);
  }
  TABLE_LOW[i] = Number(fp & 0xffffffffn);
  TABLE_HIGH[i] = Number(fp >> 32n);
}

/**
 * CRC-64-AVRO fingerprint of the UTF-8 bytes of `s`, as the 8 little-endian bytes that
 * single-object encoding writes. Pass a schema's Parsing Canonical Form, not its source text.
 */
export function crc64Avro(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  let low = Number(CRC64_AVRO_EMPTY & 0xffffffffn);
  let high = Number(CRC64_AVRO_EMPTY >> 32n);
  for (let i = 0; i < bytes.length; i++) {
    const index = (low ^ (bytes[i] as number)) & 0xff;
    // fp = (fp >>> 8) ^ TABLE[index], on the two halves.
    low = ((low >>> 8) | (high << 24)) ^ (TABLE_LOW[index] as number);
    high = (high >>> 8) ^ (TABLE_HIGH[index] as number);
  }
  const out = Buffer.alloc(8);
  out.writeUInt32LE(low >>> 0, 0);
  out.writeUInt32LE(high >>> 0, 4);
  return out;
}

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/**
 * The Parsing Canonical Form of a schema given as parsed JSON, per the specification's
 * transformation rules [PRIMITIVES] [FULLNAMES] [STRIP] [ORDER] [STRINGS] [INTEGERS] [WHITESPACE]:
 * full names instead of namespaces, only the attributes that matter to parsing, in a fixed order.
 * Doc, defaults, aliases and logical types are dropped, so documenting a field never changes
 * the fingerprint. Throws on a schema that is not valid JSON Avro; it runs on our own schema
 * files, not on device input.
 */
export function parsingCanonicalForm(schema: unknown): string {
  return canonical(schema, '');
}

function canonical(schema: unknown, namespace: string): string {
  if (typeof schema === 'string') {
    return JSON.stringify(PRIMITIVES.has(schema) ? schema : fullName(schema, namespace));
  }
  if (Array.isArray(schema)) {
    return `[${schema.map((branch) => canonical(branch, namespace)).join(',')}]`;
  }
  if (typeof schema !== 'object' || schema === null) {
    throw new TypeError(`invalid Avro schema: ${JSON.stringify(schema)}`);
  }
  const node = schema as Record<string, unknown>;
  const type = node['type'];
  if (typeof type !== 'string') {
    // {"type": {...}} and {"type": [...]} wrap a schema without adding anything.
    return canonical(type, namespace);
  }
  if (PRIMITIVES.has(type)) {
    return JSON.stringify(type);
  }
  switch (type) {
    case 'record':
    case 'error': {
      const name = namedFullName(node, namespace);
      const inner = enclosingNamespace(name);
      const fields = node['fields'];
      if (!Array.isArray(fields)) {
        throw new TypeError(`invalid Avro schema: record ${name} has no fields array`);
      }
      const rendered = fields.map((field: unknown) => {
        const f = field as Record<string, unknown>;
        return `{"name":${JSON.stringify(f['name'])},"type":${canonical(f['type'], inner)}}`;
      });
      return `{"name":${JSON.stringify(name)},"type":"record","fields":[${rendered.join(',')}]}`;
    }
    case 'enum': {
      const name = namedFullName(node, namespace);
      return `{"name":${JSON.stringify(name)},"type":"enum","symbols":${JSON.stringify(node['symbols'])}}`;
    }
    case 'fixed': {
      const name = namedFullName(node, namespace);
      return `{"name":${JSON.stringify(name)},"type":"fixed","size":${Number(node['size'])}}`;
    }
    case 'array':
      return `{"type":"array","items":${canonical(node['items'], namespace)}}`;
    case 'map':
      return `{"type":"map","values":${canonical(node['values'], namespace)}}`;
    default:
      // A reference to a named type written as {"type": "Name"}.
      return JSON.stringify(fullName(type, namespace));
  }
}

function namedFullName(node: Record<string, unknown>, namespace: string): string {
  const name = node['name'];
  if (typeof name !== 'string' || name === '') {
    throw new TypeError(`invalid Avro schema: named type without a name: ${JSON.stringify(node)}`);
  }
  const own = node['namespace'];
  return fullName(name, typeof own === 'string' ? own : namespace);
}

function fullName(name: string, namespace: string): string {
  return name.includes('.') || namespace === '' ? name : `${namespace}.${name}`;
}

function enclosingNamespace(fullname: string): string {
  const dot = fullname.lastIndexOf('.');
  return dot === -1 ? '' : fullname.slice(0, dot);
}

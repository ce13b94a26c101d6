import { describe, expect, it } from 'vitest';
import { crc64Avro, parsingCanonicalForm } from '../../schemas/fingerprint.js';

/**
 * The specification's reference algorithm, transcribed literally with BigInt, as an independent
 * check on the table-driven 32-bit implementation.
 */
function referenceFingerprint64(s: string): bigint {
  const EMPTY = 0xc15d213aa4d7a795n;
  const MASK = (1n << 64n) - 1n;
  const table: bigint[] = [];
  for (let i = 0n; i < 256n; i++) {
    let fp = i;
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n) & MASK);
    table.push(fp);
  }
  let fp = EMPTY;
  for (const byte of Buffer.from(s, 'utf8')) {
    fp = (fp >> 8n) ^ (table[Number((fp ^ BigInt(byte)) & 0xffn)] as bigint);
  }
  return BigInt.asIntN(64, fp);
}

/** Input, canonical form and signed 64-bit fingerprint, from Avro's share/test/data/schema-tests.txt. */
const SPEC_VECTORS: [input: string, canonical: string, fingerprint: bigint][] = [
  ['"null"', '"null"', 7195948357588979594n],
  ['{"type":"null"}', '"null"', 7195948357588979594n],
  ['"boolean"', '"boolean"', -6970731678124411036n],
  ['"int"', '"int"', 8247732601305521295n],
  ['{"type":"int"}', '"int"', 8247732601305521295n],
  ['"long"', '"long"', -3434872931120570953n],
  ['"float"', '"float"', 5583340709985441680n],
  ['"double"', '"double"', -8181574048448539266n],
  ['"bytes"', '"bytes"', 5746618253357095269n],
  ['"string"', '"string"', -8142146995180207161n],
  ['[  ]', '[]', -1241056759729112623n],
  ['[ "int"  ]', '["int"]', -5232228896498058493n],
  ['[ "int" , {"type":"boolean"} ]', '["int","boolean"]', 5392556393470105090n],
  ['{"fields":[], "type":"record", "name":"foo"}', '{"name":"foo","type":"record","fields":[]}', -4824392279771201922n],
  [
    '{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
    '{"name":"x.y.foo","type":"record","fields":[]}',
    5916914534497305771n,
  ],
  [
    '{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}',
    '{"name":"a.b.foo","type":"record","fields":[]}',
    -4616218487480524110n,
  ],
  [
    '{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}',
    '{"name":"foo","type":"record","fields":[]}',
    -4824392279771201922n,
  ],
  [
    '{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}',
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
    7843277075252814651n,
  ],
  [
    '{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":true},{"order":"descending","name":"f2","doc":"Hello","type":"int"}],"type":"record", "name":"foo"}',
    '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}',
    -4860222112080293046n,
  ],
  ['{"type":"enum", "name":"foo", "symbols":["A1"]}', '{"name":"foo","type":"enum","symbols":["A1"]}', -6342190197741309591n],
  [
    '{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}',
    '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
    -4448647247586288245n,
  ],
  ['{"name":"foo","type":"fixed","size":15}', '{"name":"foo","type":"fixed","size":15}', 1756455273707447556n],
  [
    '{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}',
    '{"name":"x.y.z.foo","type":"fixed","size":32}',
    -3064184465700546786n,
  ],
  ['{ "items":{"type":"null"}, "type":"array"}', '{"type":"array","items":"null"}', -589620603366471059n],
  ['{ "values":"string", "type":"map"}', '{"type":"map","values":"string"}', -8732877298790414990n],
  [
    '{"name":"PigValue","type":"record", "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}',
    '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
    -1759257747318642341n,
  ],
];

describe('crc64Avro', () => {
  it('gives the published fingerprint of "null" as little-endian bytes 8a8f25cce724dd63', () => {
    const fp = crc64Avro('"null"');
    expect(fp).toHaveLength(8);
    expect(fp.toString('hex')).toBe('8a8f25cce724dd63');
    expect(fp.readBigUInt64LE(0).toString(16)).toBe('63dd24e7cc258f8a');
  });

  it.each(SPEC_VECTORS)('fingerprints the canonical form of %s as the Avro test suite publishes', (_input, canonical, expected) => {
    expect(crc64Avro(canonical).readBigInt64LE(0)).toBe(expected);
  });

  it('agrees with the specification reference algorithm on arbitrary text, including non-ASCII', () => {
    const samples = ['', 'a', 'hello world', 'temperature °C', '日本語', '\u0000\uffff', 'x'.repeat(1000)];
    for (let i = 0; i < 200; i++) {
      samples.push(String.fromCharCode(...Array.from({ length: i }, (_, k) => 32 + ((k * 7919 + i * 31) % 95))));
    }
    for (const s of samples) {
      expect(crc64Avro(s).readBigInt64LE(0)).toBe(referenceFingerprint64(s));
    }
  });

  it('returns the empty value for empty input, as the reference algorithm does', () => {
    expect(crc64Avro('').readBigUInt64LE(0)).toBe(0xc15d213aa4d7a795n);
  });
});

describe('parsingCanonicalForm', () => {
  it.each(SPEC_VECTORS)('normalises %s to the published canonical form', (input, canonical) => {
    expect(parsingCanonicalForm(JSON.parse(input))).toBe(canonical);
  });

  it('strips logical types, docs and defaults and qualifies nested names with the enclosing namespace', () => {
    const schema = {
      type: 'record',
      name: 'Outer',
      namespace: 'ns',
      doc: 'dropped',
      fields: [
        { name: 't', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'dropped', default: 0 },
        { name: 'e', type: { type: 'enum', name: 'Colour', symbols: ['RED'] } },
        { name: 'again', type: ['null', 'Colour'], default: null },
        { name: 'm', type: { type: 'map', values: { type: 'array', items: 'ns.Colour' } } },
      ],
    };
    expect(parsingCanonicalForm(schema)).toBe(
      '{"name":"ns.Outer","type":"record","fields":[' +
        '{"name":"t","type":"long"},' +
        '{"name":"e","type":{"name":"ns.Colour","type":"enum","symbols":["RED"]}},' +
        '{"name":"again","type":["null","ns.Colour"]},' +
        '{"name":"m","type":{"type":"map","values":{"type":"array","items":"ns.Colour"}}}]}',
    );
  });

  it('rejects a schema that is not Avro JSON', () => {
    expect(() => parsingCanonicalForm(42)).toThrow(/invalid Avro schema/);
    expect(() => parsingCanonicalForm({ type: 'record', fields: [] })).toThrow(/without a name/);
  });
});

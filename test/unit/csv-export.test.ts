import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { csvHeader, csvRow, openCsvExport } from '../../device-sim/csv-export.js';
import { createReefer } from '../../device-sim/reefer-model.js';
import { readingFromColumns } from '../../gateway/pipeline/decode-reading.js';
import type { ReeferReading } from '../../schemas/reefer-reading.js';
import { REFERENCE_READING } from '../harness/reference-reading.js';

const READING: ReeferReading = { ...REFERENCE_READING, kilowatts: 0, fan_1: false, fan_2: false, fan_3: false, maintenance_required: true };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('CSV export', () => {
  it('writes the reference header, in its order and spelling, then the failure label', () => {
    expect(csvHeader()).toBe(
      'container_id,measurement_time,product_id,temperature,target_temperature,ambiant_temperature,kilowatts,time_door_open,' +
        'content_type,defrost_cycle,oxygen_level,nitrogen_level,humidity_level,carbon_dioxide_level,vent_1,vent_2,vent_3,' +
        'latitude,longitude,maintenance_required,failure',
    );
  });

  it('writes values as the reference does: zone-less UTC time, floats with a decimal point, True/False fans, 0/1 label', () => {
    expect(csvRow(READING, { failure: 'poweroff' })).toBe(
      'C01,2020-01-15 17:59:45,P05,5.02,5.0,20.5,0.0,0,1,5,21.5,75.9,39.8,4.7,False,False,False,37.82,-122.32,1,poweroff',
    );
    expect(csvRow({ ...READING, maintenance_required: false, fan_1: true, time_door_open: 2.5 }, { failure: 'none' })).toMatch(
      /,2\.5,1,5,.*,True,False,False,37\.82,-122\.32,0,none$/,
    );
  });

  it('leaves a cell empty for a sensor that did not report, and quotes text that needs it', () => {
    const row = csvRow({ ...READING, product_id: 'P,"5"', humidity_level: null }, { failure: 'none' });
    expect(row).toContain(',"P,""5""",');
    expect(row).toContain(',75.9,,4.7,');
  });

  it('writes rows the gateway reads back as the same reading', () => {
    const reefer = createReefer({ containerId: 'C0001', seed: 3, failures: [{ mode: 'poweroff', startReading: 2, readings: 2 }] });
    for (let i = 0; i < 50; i++) {
      const { reading, label } = reefer.sample();
      const cells = csvRow(reading, label).split(',');
      expect(cells.at(-1)).toBe(label.failure);
      const decoded = readingFromColumns(cells.slice(0, 20), { timeZone: 'UTC', nowMs: reading.measurement_time, maxPayloadBytes: 65_536 });
      expect(decoded).toMatchObject({ ok: true, reading });
    }
  });

  it('writes a file: the header, then one line per reading', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reefer-csv-'));
    dirs.push(dir);
    const path = join(dir, 'out.csv');
    const csv = await openCsvExport(path);
    csv.write(READING, { failure: 'poweroff' });
    csv.write({ ...READING, container_id: 'C02' }, { failure: 'none' });
    expect(csv.rows).toBe(2);
    await csv.close();
    await csv.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toEqual([csvHeader(), csvRow(READING, { failure: 'poweroff' }), expect.stringMatching(/^C02,.*,none$/), '']);
  });

  it('rejects a file it cannot create, naming it', async () => {
    await expect(openCsvExport('/nonexistent-dir/out.csv')).rejects.toThrow(/cannot write "\/nonexistent-dir\/out\.csv": ENOENT/);
  });
});

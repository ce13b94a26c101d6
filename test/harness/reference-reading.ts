/** The reference architecture's example reading, as a tuple string and as the canonical reading it means. */
import type { ReeferReading } from '../../schemas/reefer-reading.js';

export const REFERENCE_TUPLE =
  "('C01', '2020-01-15 17:59:45', 'P05', 5.02, 5.0, 20.5, 2.6, 0, 1, 5, 21.5, 75.9, 39.8, 4.7, True, True, True, '37.82', '-122.32', 0)";

export const REFERENCE_READING: Readonly<ReeferReading> = Object.freeze({
  container_id: 'C01',
  measurement_time: Date.UTC(2020, 0, 15, 17, 59, 45),
  product_id: 'P05',
  temperature: 5.02,
  target_temperature: 5,
  ambient_temperature: 20.5,
  kilowatts: 2.6,
  time_door_open: 0,
  content_type: 1,
  defrost_cycle: 5,
  oxygen_level: 21.5,
  nitrogen_level: 75.9,
  humidity_level: 39.8,
  carbon_dioxide_level: 4.7,
  fan_1: true,
  fan_2: true,
  fan_3: true,
  latitude: 37.82,
  longitude: -122.32,
  maintenance_required: false,
});

/**
 * A plain, healthy reading for tests that need one and do not care which: Carrots at 4 °C in
 * Rotterdam. Tests override the fields their assertions are about.
 */
export function sampleReading(overrides: Partial<ReeferReading> = {}): ReeferReading {
  return {
    container_id: 'C01',
    measurement_time: Date.UTC(2026, 0, 1),
    product_id: 'P01',
    temperature: 4.1,
    target_temperature: 4,
    ambient_temperature: 20,
    kilowatts: 2.7,
    time_door_open: 0,
    content_type: 1,
    defrost_cycle: 4,
    oxygen_level: 21,
    nitrogen_level: 78,
    humidity_level: 40,
    carbon_dioxide_level: 4,
    fan_1: true,
    fan_2: true,
    fan_3: true,
    latitude: 51.9,
    longitude: 4.1,
    maintenance_required: false,
    ...overrides,
  };
}

/** A reading with only the required fields: every optional sensor null. */
export function sparseReading(overrides: Partial<ReeferReading> = {}): ReeferReading {
  return {
    ...sampleReading(),
    product_id: null,
    target_temperature: null,
    ambient_temperature: null,
    kilowatts: null,
    time_door_open: null,
    content_type: null,
    defrost_cycle: null,
    oxygen_level: null,
    nitrogen_level: null,
    humidity_level: null,
    carbon_dioxide_level: null,
    fan_1: null,
    fan_2: null,
    fan_3: null,
    latitude: null,
    longitude: null,
    maintenance_required: null,
    ...overrides,
  };
}

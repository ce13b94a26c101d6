/**
 * The canonical reefer reading: what the sensors measured, one field per reference column.
 * Field names are the Avro record's names, so a value of this type encodes as it is.
 * Every optional sensor is `null` when the device did not report it.
 */
export interface ReeferReading {
  container_id: string;
  /** UTC milliseconds since the epoch. */
  measurement_time: number;
  product_id: string | null;
  temperature: number;
  target_temperature: number | null;
  ambient_temperature: number | null;
  kilowatts: number | null;
  time_door_open: number | null;
  content_type: number | null;
  defrost_cycle: number | null;
  oxygen_level: number | null;
  nitrogen_level: number | null;
  humidity_level: number | null;
  carbon_dioxide_level: number | null;
  fan_1: boolean | null;
  fan_2: boolean | null;
  fan_3: boolean | null;
  latitude: number | null;
  longitude: number | null;
  maintenance_required: boolean | null;
}

/** How a reading reached the gateway. */
export type Transport = 'mqtt' | 'serial' | 'upstream';

/** A reading once the gateway has made it durable: the Avro `ReeferTelemetry` record. */
export interface ReeferTelemetry extends ReeferReading {
  gateway_id: string;
  seq: number;
  transport: Transport;
  /** UTC milliseconds since the epoch. */
  received_time: number;
}

/** The 20 reference columns, in the order the reference's CSV rows and tuple strings use. */
export const REFERENCE_COLUMNS = [
  'container_id',
  'measurement_time',
  'product_id',
  'temperature',
  'target_temperature',
  'ambient_temperature',
  'kilowatts',
  'time_door_open',
  'content_type',
  'defrost_cycle',
  'oxygen_level',
  'nitrogen_level',
  'humidity_level',
  'carbon_dioxide_level',
  'fan_1',
  'fan_2',
  'fan_3',
  'latitude',
  'longitude',
  'maintenance_required',
] as const satisfies readonly (keyof ReeferReading)[];

/** Input spellings accepted beside the canonical names (the reference uses both). */
export const FIELD_ALIASES: Readonly<Record<string, keyof ReeferReading>> = {
  ambiant_temperature: 'ambient_temperature',
  vent_1: 'fan_1',
  vent_2: 'fan_2',
  vent_3: 'fan_3',
};

/** Products of the reference data: setpoint, humidity and content type. */
export interface Product {
  id: string;
  name: string;
  targetTemperatureC: number;
  humidityPercent: number;
  contentType: number;
}

export const PRODUCTS: readonly Product[] = [
  { id: 'P01', name: 'Carrots', targetTemperatureC: 4, humidityPercent: 40, contentType: 1 },
  { id: 'P02', name: 'Banana', targetTemperatureC: 6, humidityPercent: 60, contentType: 2 },
  { id: 'P03', name: 'Salad', targetTemperatureC: 4, humidityPercent: 40, contentType: 1 },
  { id: 'P04', name: 'Avocado', targetTemperatureC: 6, humidityPercent: 40, contentType: 2 },
  { id: 'P05', name: 'Tomato', targetTemperatureC: 5, humidityPercent: 40, contentType: 1 },
  { id: 'P06', name: 'Vaccines', targetTemperatureC: -50, humidityPercent: 40, contentType: 2 },
];

/**
 * The serial line contract devices and the gateway share (docs/serial.md): the framings a port can
 * speak and the checksum of the NMEA-0183-style sentence `$RFR,<20 reference values>*HH`.
 */

/** How readings are written on a serial line, one reading per line. */
export const SERIAL_FRAMINGS = ['json', 'csv', 'nmea'] as const;
export type SerialFraming = (typeof SERIAL_FRAMINGS)[number];

/** The talker and sentence id of a reading sentence, the first field after `$`. */
export const SENTENCE_TALKER = 'RFR';

/**
 * NMEA-0183 checksum: the XOR of every byte between `$` and `*`, both excluded, written after the
 * `*` as two hexadecimal digits (upper case when sent; either case accepted).
 */
export function sentenceChecksum(body: Uint8Array): number {
  let sum = 0;
  for (const byte of body) sum ^= byte;
  return sum;
}

/** The two hexadecimal digits that follow the `*`. */
export function formatChecksum(sum: number): string {
  return sum.toString(16).toUpperCase().padStart(2, '0');
}

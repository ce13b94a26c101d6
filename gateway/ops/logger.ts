/** The root logger: structured JSON lines (pino) on stderr; components log through children of it. */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export function createLogger(level: LevelWithSilent, name = 'reefer-gateway'): Logger {
  return pino({ name, level, base: { name } }, pino.destination({ dest: 2, sync: false }));
}

export type { Logger };

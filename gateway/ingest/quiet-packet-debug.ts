/**
 * mqtt-packet calls its `debug` loggers about fifteen times for every packet it parses, and each call
 * gathers its arguments into an array before finding logging off: a tenth of what the MQTT listener
 * allocates per reading. Imported before aedes, this gives mqtt-packet loggers that do nothing
 * instead, for the namespaces `DEBUG` does not turn on when it loads. Other users of `debug` get the
 * real one. Without effect (and harmless) when mqtt-packet was loaded first.
 */
import { createRequire } from 'node:module';

type Debugger = ((...args: unknown[]) => void) & { enabled: boolean; namespace: string; extend(namespace: string, delimiter?: string): Debugger };
type CreateDebug = ((namespace: string) => Debugger) & Record<string, unknown>;

const packetRequire = createRequire(createRequire(import.meta.resolve('aedes')).resolve('mqtt-packet'));
const debugPath = packetRequire.resolve('debug');
const packetPath = packetRequire.resolve('./parser.js');

if (packetRequire.cache[packetPath] === undefined) {
  const createDebug = packetRequire('debug') as CreateDebug;
  const quiet = ((namespace: string): Debugger => {
    const real = createDebug(namespace);
    if (!namespace.startsWith('mqtt-packet:') || real.enabled) return real;
    return Object.assign(() => undefined, { enabled: false, namespace, extend: real.extend.bind(real) }) as Debugger;
  }) as CreateDebug;
  Object.assign(quiet, createDebug);
  packetRequire.cache[debugPath]!.exports = quiet;
}

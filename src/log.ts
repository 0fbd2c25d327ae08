// One logger for every component: JSON lines on stderr (stdout is kept for what a person or a
// test reads: chosen addresses, command results). WEFT_LOG_LEVEL sets the level.
import { pino, destination, type Logger } from 'pino';

export type { Logger };

export function createLogger(component: string): Logger {
  return pino(
    { name: component, level: process.env.WEFT_LOG_LEVEL ?? 'info', base: { component } },
    destination({ fd: 2, sync: true }),
  );
}

/** A logger that writes nothing, for unit tests and embedded use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

// One logger for every component: JSON lines on stderr (stdout is kept for what a person or a
// test reads: chosen addresses, command results). WEFT_LOG_LEVEL sets the level.
//
// The lines are pino's format (`level` as a number, `time` in ms, `pid`, `hostname`, `name`,
// the bindings and fields, `msg`), so pino's tools (pino-pretty) read them, but the logger is
// ours: pino and its dependencies cost every sidecar ~1.5 MB of memory (measured: idle RSS
// 68.7 → 67.0 MiB, live heap 13.9 → 12.8 MB), for features Weft does not use (transports on
// worker threads, redaction, asynchronous destinations). Writes are synchronous, as we had
// pino's, so nothing is lost when a process exits.

import { writeSync } from 'node:fs';
import { hostname } from 'node:os';

export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
export type LevelName = keyof typeof LEVELS;

type LogFn = {
  (msg: string): void;
  (fields: object, msg?: string): void;
};

export interface Logger {
  /** The least severe level written; `silent` writes nothing. */
  level: LevelName | 'silent';
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** A logger whose lines also carry `bindings`. */
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled(level: LevelName): boolean;
}

/** Where lines go: one call per line, the newline included. */
export interface LogDestination {
  write(line: string): void;
}

const RETRY_SLEEP = new Int32Array(new SharedArrayBuffer(4));

/**
 * Standard error, synchronously, and never an exception: a log line is not worth a crash. A full
 * pipe (stderr made non-blocking by anyone sharing it, e.g. the app `weft run` started) is
 * waited out for up to ~1 s in 1 ms steps, a partial write is finished, and a reader that went
 * away (EPIPE) or any other error drops the line.
 */
function writeStderr(line: string): void {
  let buf = Buffer.from(line);
  for (let waits = 0; buf.length > 0;) {
    try {
      buf = buf.subarray(writeSync(2, buf));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || ++waits > 1000) return;
      Atomics.wait(RETRY_SLEEP, 0, 0, 1);
    }
  }
}

const STDERR: LogDestination = { write: writeStderr };

/** A level by name (WEFT_LOG_LEVEL's values); anything else is `fallback`. */
export function levelOf(name: string | undefined, fallback: LevelName = 'info'): LevelName | 'silent' {
  return name !== undefined && (name === 'silent' || Object.hasOwn(LEVELS, name))
    ? (name as LevelName | 'silent')
    : fallback;
}

/**
 * An Error as JSON can show it (JSON.stringify gives `{}`): type, message, its own fields (a
 * code, gRPC details, a WeftError's field errors), stack and cause (which the replacer expands
 * in turn).
 */
function serializeError(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = Object.assign({ type: e.name, message: e.message }, e as object);
  if (e.stack !== undefined) out.stack = e.stack;
  if (e.cause !== undefined) out.cause = e.cause;
  return out;
}

/** Errors expanded, bigints as strings; with `seen`, an object met again is cut (cycles). */
function replacer(seen: WeakSet<object> | undefined): (key: string, value: unknown) => unknown {
  return (_key, value) => {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value !== 'object' || value === null) return value;
    if (seen) {
      if (seen.has(value)) return '[Circular]';
      seen.add(value);
    }
    return value instanceof Error ? serializeError(value) : value;
  };
}

/**
 * JSON of anything a caller logs. Never throws: a cycle is cut (then any object met twice shows
 * as "[Circular]"), and a value whose getter or toJSON throws leaves only the line's own fields
 * and what went wrong.
 */
function stringify(record: Record<string, unknown>, core: Record<string, unknown>): string {
  try {
    return JSON.stringify(record, replacer(undefined));
  } catch {
    try {
      return JSON.stringify(record, replacer(new WeakSet()));
    } catch (e) {
      return JSON.stringify({ ...core, logError: `could not write the line's fields: ${String(e)}` });
    }
  }
}

class JsonLogger implements Logger {
  trace: LogFn = this.at('trace');
  debug: LogFn = this.at('debug');
  info: LogFn = this.at('info');
  warn: LogFn = this.at('warn');
  error: LogFn = this.at('error');
  fatal: LogFn = this.at('fatal');

  constructor(
    public level: LevelName | 'silent',
    private readonly bindings: Record<string, unknown>,
    private readonly dest: LogDestination,
  ) {}

  isLevelEnabled(level: LevelName): boolean {
    return this.level !== 'silent' && LEVELS[level] >= LEVELS[this.level];
  }

  child(bindings: Record<string, unknown>): Logger {
    return new JsonLogger(this.level, { ...this.bindings, ...bindings }, this.dest);
  }

  private at(level: LevelName): LogFn {
    return ((first: string | object, msg?: string): void => {
      if (!this.isLevelEnabled(level)) return;
      const fields = typeof first === 'string' ? undefined : first instanceof Error ? { err: first } : first;
      const text = typeof first === 'string' ? first : msg;
      const core: Record<string, unknown> = { level: LEVELS[level], time: Date.now(), ...this.bindings };
      if (text !== undefined) core.msg = text;
      // The line's own level, time and message stand, whatever the fields are called.
      const record: Record<string, unknown> = { ...core, ...fields, ...core };
      try {
        this.dest.write(`${stringify(record, core)}\n`);
      } catch {
        // A destination that throws loses the line; the caller carries on.
      }
    }) as LogFn;
  }
}

/** The logger of a component (`name` and `component` on every line); `dest` defaults to stderr. */
export function createLogger(component: string, dest: LogDestination = STDERR): Logger {
  return new JsonLogger(
    levelOf(process.env.WEFT_LOG_LEVEL),
    { pid: process.pid, hostname: hostname(), name: component, component },
    dest,
  );
}

/** A logger that writes nothing, for unit tests and embedded use. */
export function silentLogger(): Logger {
  return new JsonLogger('silent', {}, STDERR);
}

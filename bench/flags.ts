// Command-line flags for the bench scripts: walks argv and, for each flag, gives the reader of
// its value and a positive-integer check that name the flag in their errors.

/** A command line the script cannot run with: said in one line, without a stack trace. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Flag {
  name: string;
  /** The next argument, the flag's value; throws if there is none. */
  value(): string;
  /** `v` as a positive integer; throws naming the flag otherwise. */
  positive(v: string): number;
  /** Throws: the flag is not one the script knows, whose usage is at the top of its file. */
  unknown(): never;
}

/** `script`: the bench's name, as in bench/<script>.ts, for the error an unknown flag gets. */
export function* flags(argv: readonly string[], script: string): Generator<Flag> {
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!;
    yield {
      name,
      value: () => {
        const v = argv[++i];
        if (v === undefined) throw new UsageError(`${name} needs a value`);
        return v;
      },
      positive: (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1)
          throw new UsageError(`${name}: expected a positive integer, got "${v}"`);
        return n;
      },
      unknown: () => {
        throw new UsageError(`unknown flag ${name}; see the usage at the top of bench/${script}.ts`);
      },
    };
  }
}

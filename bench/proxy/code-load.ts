// A stand-in for a proxy's own code per message, for the byte pipe (node-pipe.ts) and
// bench/cpu-latency.ts: `n` small functions, each compiled from its own source text (so V8 gives
// each its own bytecode and machine code, as a proxy's parsers, filters and router have), all
// called once per read. A spin loop stands for CPU; this stands for code: run back to back it
// costs what warmMicros() says, but between requests a millisecond apart its instructions and
// branches are no longer in the caches, and it costs several times that.

/** Property names and values the functions walk, like a small header map. */
const FIELDS = { host: 'svc', accept: '*/*', 'user-agent': 'bench/1', 'x-request-id': 'abc-123', te: 'x' };

/** Calls `n` distinct functions once each; returns their sum, so none is optimised away. */
export function codeLoad(n: number): () => number {
  const fns = Array.from(
    { length: n },
    (_, i) =>
      // Distinct constants in each body make each a function of its own, compiled on its own.
      new Function(
        'o',
        `let s = ${i};
         for (const k in o) {
           if (k.length > ${i % 7}) s += o[k].length * ${i + 1};
           else s ^= ${i * 31};
         }
         if (s % ${i + 3} === 1) s += String(s).length;
         return s;`,
      ) as (o: object) => number,
  );
  return () => {
    let s = 0;
    for (let i = 0; i < fns.length; i++) s += fns[i]!(FIELDS);
    return s;
  };
}

/** µs per call of `load` back to back, after warming it up (caches and JIT hot). */
export function warmMicros(load: () => number, calls = 2000): number {
  let sink = 0;
  for (let i = 0; i < 10 * calls; i++) sink += load();
  const start = performance.now();
  for (let i = 0; i < calls; i++) sink += load();
  const us = ((performance.now() - start) / calls) * 1000;
  return sink === -1 ? NaN : us;
}

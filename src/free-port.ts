// A TCP port on 127.0.0.1 that was free a moment ago, for launching an app whose port must be
// known before it starts (the demo, tests, benchmarks). Between the check and the app's own bind
// another socket could take the port. A port the kernel picks for `listen(0)` is the worst choice
// for that: the kernel hands the same range out for every other `listen(0)` and for the source
// port of every outgoing connection, so on a busy machine (a test suite) one of those can land on
// it. So the port comes from just below the kernel's ephemeral range, which the kernel never
// hands out by itself, from a block chosen by this process's pid (two processes rarely share a
// block), in turn within the block (one process does not hand out a port twice in a row).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const BLOCK = 256;
const BLOCKS = 64;

/** The first port of the kernel's ephemeral range (Linux), or IANA's 49152 elsewhere. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 0) return low;
  } catch {
    // not Linux
  }
  return 49152;
}

const base = ephemeralLow() - BLOCK * BLOCKS;
const block = base >= 1024 ? base + (process.pid % BLOCKS) * BLOCK : undefined;
let next = Math.floor(Math.random() * BLOCK);

/** Listens on `port` and closes again: the port it got, or undefined if it is taken. */
function tryListen(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(undefined) : reject(err),
    );
    s.listen(port, host, () => {
      const got = (s.address() as { port: number }).port;
      s.close(() => resolve(got));
    });
  });
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  if (block !== undefined) {
    for (let i = 0; i < BLOCK; i++) {
      const port = block + (next % BLOCK);
      next += 1;
      const got = await tryListen(port, host);
      if (got !== undefined) return got;
    }
  }
  // No room below the ephemeral range (or the whole block taken): the kernel's pick.
  const got = await tryListen(0, host);
  if (got === undefined) throw new Error(`no free TCP port on ${host}`);
  return got;
}

// A TCP port on 127.0.0.1 that was free a moment ago (bind 0, read, close). For launching an app
// whose port must be known before it starts (the demo, tests, benchmarks); a race with another
// process taking the port in between is possible and reported by whoever binds it.
import { createServer } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

// The "Node floor" hop of the proxy bench: a Node process that relays bytes and nothing else.
// Each client connection gets its own connection to the next hop and the two are piped both
// ways: no HTTP parsing, routing, pooling, headers or load balancing. The outbound role takes
// plaintext and speaks mutual TLS onward; the inbound role takes mutual TLS and speaks plaintext
// to the upstream, with the same certificates, TLS version, suite and group as the nginx chain.
// What Weft's sidecars cost beyond this is the cost of its HTTP layer; what this costs is the
// cost of Node's sockets and TLS on this machine, which any proxy written for Node pays.
// BURN_US (default 0) makes the hop spin for that many microseconds of CPU on every read, and
// CODE_FNS (default 0) call that many distinct small functions (code-load.ts), before the bytes
// go on: stand-ins for a proxy's own work per message, as CPU and as code (bench/cpu-latency.ts).
//
//   node dist/bench/proxy/node-pipe.js outbound|inbound LISTEN_PORT NEXT_PORT CERT KEY CA SERVERNAME [BURN_US [CODE_FNS]]

import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { TLS_GROUP, TLS_SUITE } from './bench-pki.js';
import { codeLoad } from './code-load.js';

const [role, listen, next, certFile, keyFile, caFile, servername, burn = '0', fns = '0'] =
  process.argv.slice(2);
const burnMs = Number(burn) / 1000;
const codeFns = Number(fns);
if (
  !(burnMs >= 0) ||
  !Number.isInteger(codeFns) ||
  codeFns < 0 ||
  (role !== 'outbound' && role !== 'inbound') ||
  !listen ||
  !next ||
  !certFile ||
  !keyFile ||
  !caFile ||
  !servername
) {
  console.error(
    'usage: node-pipe outbound|inbound LISTEN_PORT NEXT_PORT CERT KEY CA SERVERNAME [BURN_US [CODE_FNS]]',
  );
  process.exit(2);
}

const tlsOptions = {
  cert: readFileSync(certFile),
  key: readFileSync(keyFile),
  ca: readFileSync(caFile),
  minVersion: 'TLSv1.3',
  ciphersuites: TLS_SUITE,
  ecdhCurve: TLS_GROUP,
  ALPNProtocols: ['http/1.1'],
} as const;

/** Busy for burnMs: CPU spent on the path of the message, as a proxy's parsing and routing is. */
function spin(): void {
  const until = performance.now() + burnMs;
  while (performance.now() < until);
}

const code = codeFns > 0 ? codeLoad(codeFns) : undefined;

/** Pipes a and b both ways; either side failing or closing ends the other. */
function relay(a: net.Socket, b: net.Socket): void {
  // Listeners run in the order added: the spin and the code come before pipe()'s write onward.
  if (burnMs > 0) {
    a.on('data', spin);
    b.on('data', spin);
  }
  if (code !== undefined) {
    a.on('data', code);
    b.on('data', code);
  }
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}

const nextPort = Number(next);
let server: net.Server;
if (role === 'outbound') {
  const secureContext = tls.createSecureContext(tlsOptions);
  server = net.createServer({ noDelay: true }, (client) => {
    // The inbound hop's certificate is checked against the CA and the name, as nginx's is.
    const upstream = tls.connect({
      host: '127.0.0.1',
      port: nextPort,
      secureContext,
      servername,
      ALPNProtocols: tlsOptions.ALPNProtocols,
    });
    upstream.setNoDelay(true);
    relay(client, upstream);
  });
} else {
  server = tls.createServer({ ...tlsOptions, requestCert: true, rejectUnauthorized: true }, (client) => {
    client.setNoDelay(true);
    relay(client, net.connect({ host: '127.0.0.1', port: nextPort, noDelay: true }));
  });
}
server.listen(Number(listen), '127.0.0.1', () => console.log('ready'));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));

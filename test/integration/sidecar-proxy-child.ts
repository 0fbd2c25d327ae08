// A child process hosting an outbound and an inbound proxy in front of an app port (argv[2]),
// so a test can watch the proxies' own memory while it streams through them. Sends its outbound
// port on start; answers 'rss' with its resident set size; exits on 'stop' or when its parent
// goes away.

import { startMesh } from './sidecar-proxy-helpers.js';

const appPort = Number(process.argv[2]);
const mesh = await startMesh(appPort, 'http1');
process.on('message', (msg) => {
  if (msg === 'rss') process.send?.({ rss: process.memoryUsage().rss });
  if (msg === 'stop') void mesh.close().then(() => process.exit(0));
});
// The test process gone (killed on a timeout, say): go too, rather than linger as an orphan.
process.on('disconnect', () => process.exit(0));
process.send?.({ port: mesh.port });

// freePort: ports for apps started later come from outside the kernel's ephemeral range, so
// neither another listen(0) nor an outgoing connection's source port can take them meanwhile.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { freePort } from '../../src/free-port.js';

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((c) => c.destroy());
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

test('ports are below the ephemeral range, bindable, and not handed out twice in a row', async (t) => {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
    .trim()
    .split(/\s+/)
    .map(Number);
  const ports: number[] = [];
  for (let i = 0; i < 20; i++) ports.push(await freePort());
  for (const p of ports) assert.ok(p >= 1024 && p < low!, `${p} outside [1024, ${low})`);
  assert.equal(new Set(ports).size, ports.length, `no repeats in ${ports.join(',')}`);
  const s = await listen(ports[0]!);
  t.after(() => new Promise<void>((r) => s.close(() => r())));
  assert.equal((s.address() as { port: number }).port, ports[0]);
});

test('a port already listened on is skipped', async (t) => {
  const held: Server[] = [];
  t.after(() => {
    for (const s of held) s.close();
  });
  // Ports are handed out in turn within a block of 256: hold the next ones after `p`, and those
  // where the turn wraps if `p` ends its block. What comes next is none of them.
  const p = await freePort();
  const taken = new Set<number>();
  for (const q of [1, 2, 3, 4, 5, 6, 7, 8].flatMap((d) => [p + d, p + d - 256])) {
    try {
      held.push(await listen(q));
      taken.add(q);
    } catch {
      // in use by someone else already: skipped as well
    }
  }
  assert.ok(taken.size >= 8, `held ${taken.size} ports`);
  for (let i = 0; i < 4; i++) {
    const q = await freePort();
    assert.ok(!taken.has(q), `${q} is held`);
  }
});

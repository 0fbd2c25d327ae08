// The logger: pino-compatible JSON lines, levels, child bindings, and values JSON cannot show
// by itself (errors, bigints, cycles) written rather than lost or thrown on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { createLogger, levelOf, silentLogger, type Logger } from '../../src/log.js';

function capture(component = 'test'): { log: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const log = createLogger(component, { write: (line) => void raw.push(line) });
  return {
    log,
    lines: () =>
      raw.map((l) => {
        assert.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'), `one line each: ${JSON.stringify(l)}`);
        return JSON.parse(l) as Record<string, unknown>;
      }),
  };
}

test("a line carries pino's fields: level number, time, pid, hostname, name, component, msg", () => {
  const { log, lines } = capture('sidecar');
  const before = Date.now();
  log.info({ port: 15001 }, 'listening');
  log.warn('plain message');
  const [a, b] = lines();
  assert.equal(a!.level, 30);
  assert.ok((a!.time as number) >= before && (a!.time as number) <= Date.now());
  assert.equal(a!.pid, process.pid);
  assert.equal(a!.hostname, hostname());
  assert.equal(a!.name, 'sidecar');
  assert.equal(a!.component, 'sidecar');
  assert.equal(a!.port, 15001);
  assert.equal(a!.msg, 'listening');
  assert.equal(b!.level, 40);
  assert.equal(b!.msg, 'plain message');
});

test('levels below the logger level are not written; silent writes nothing', () => {
  const { log, lines } = capture();
  log.level = 'warn';
  log.debug('no');
  log.info({ x: 1 }, 'no');
  log.warn('yes');
  log.error({ y: 2 }, 'yes');
  log.fatal('yes');
  assert.deepEqual(
    lines().map((l) => l.level),
    [40, 50, 60],
  );
  assert.equal(log.isLevelEnabled('info'), false);
  assert.equal(log.isLevelEnabled('error'), true);
  log.level = 'silent';
  log.fatal('no');
  assert.equal(lines().length, 3);
  assert.equal(silentLogger().isLevelEnabled('fatal'), false);
});

test('WEFT_LOG_LEVEL names: known ones are taken, anything else falls back', () => {
  assert.equal(levelOf('debug'), 'debug');
  assert.equal(levelOf('silent'), 'silent');
  assert.equal(levelOf(undefined), 'info');
  assert.equal(levelOf('loud', 'warn'), 'warn');
  assert.equal(levelOf('constructor'), 'info');
});

test('a child adds its bindings to every line and keeps the parent level', () => {
  const { log, lines } = capture();
  log.level = 'debug';
  const child = log.child({ listener: 'inbound' }).child({ conn: 7 });
  child.debug({ bytes: 3 }, 'read');
  const [l] = lines();
  assert.equal(l!.listener, 'inbound');
  assert.equal(l!.conn, 7);
  assert.equal(l!.bytes, 3);
  assert.equal(l!.component, 'test');
});

test('errors are written with type, message, code, stack and cause; bigints and cycles do not throw', () => {
  const { log, lines } = capture();
  const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const err = new TypeError('bad thing', { cause });
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  log.error({ err, big: 2n ** 70n, cyclic }, 'failed');
  log.error(new RangeError('alone'));
  const [a, b] = lines();
  const e = a!.err as Record<string, unknown>;
  assert.equal(e.type, 'TypeError');
  assert.equal(e.message, 'bad thing');
  assert.match(e.stack as string, /TypeError: bad thing/);
  assert.deepEqual((e.cause as Record<string, unknown>).code, 'ECONNREFUSED');
  assert.equal(a!.big, (2n ** 70n).toString());
  assert.deepEqual(a!.cyclic, { name: 'loop', self: '[Circular]' });
  assert.equal((b!.err as Record<string, unknown>).message, 'alone');
  assert.equal(b!.msg, undefined);
});

test('a log call never throws: failing getters and toJSON, a throwing destination; own level and time stand', () => {
  const { log, lines } = capture();
  const hostile = {
    get boom(): string {
      throw new Error('getter threw');
    },
  };
  const shared = { id: 1 };
  assert.doesNotThrow(() => log.info({ hostile }, 'still written'));
  assert.doesNotThrow(() => log.info({ toJSON: () => assert.fail('toJSON threw') }, 'also'));
  log.info({ a: shared, b: shared, level: 'fake', time: 'never', msg: 'not mine' }, 'mine');
  const err = Object.assign(new Error('rpc failed'), { details: 'deadline', errors: [{ path: 'x' }] });
  log.warn({ err }, 'with fields');
  const [first, second, third, fourth] = lines();
  assert.equal(first!.msg, 'still written');
  assert.match(first!.logError as string, /getter threw/);
  assert.equal(second!.msg, 'also');
  assert.deepEqual(third!.a, { id: 1 });
  assert.deepEqual(third!.b, { id: 1 }, 'an object met twice without a cycle is written twice');
  assert.equal(third!.level, 30);
  assert.equal(typeof third!.time, 'number');
  assert.equal(third!.msg, 'mine');
  const e = fourth!.err as Record<string, unknown>;
  assert.equal(e.details, 'deadline');
  assert.deepEqual(e.errors, [{ path: 'x' }]);
  const broken = createLogger('x', {
    write: () => {
      throw new Error('EPIPE');
    },
  });
  assert.doesNotThrow(() => broken.error('lost, not thrown'));
});

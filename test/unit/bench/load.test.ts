// The proxy bench's reading of h2load (bench/proxy/load.ts): its per-request log and its summary
// line, as nghttp2 1.52's h2load writes them. A bench that misreads them would report latencies
// of requests that failed, or fail to see that they did.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { h2loadFailures, rateCommand, readH2loadLog, readHeyCsv } from '../../../bench/proxy/load.js';

test('readH2loadLog: each line is start µs, status, duration µs; times in ms, non-200 counted', () => {
  const latencies: number[] = [];
  const log = '1795728745788493\t200\t6536\n1795728745799170\t200\t924\n1795728745809211\t503\t378\n';
  assert.equal(readH2loadLog(log, latencies), 1);
  assert.deepEqual(latencies, [6.536, 0.924, 0.378]);
  assert.equal(readH2loadLog('', latencies), 0, 'an empty log adds nothing');
  assert.equal(latencies.length, 3);
});

test('readH2loadLog refuses a line it does not understand rather than skip it', () => {
  for (const bad of [
    '1795728745788493\t200\n',
    '1795728745788493\tok\t924\n',
    '1\t200\t-5\n',
    '1\t200\t3\t4\n',
  ])
    assert.throws(() => readH2loadLog(bad, []), /h2load log line not understood/, JSON.stringify(bad));
});

test("h2loadFailures adds failed, errored and timed-out requests from h2load's summary", () => {
  const summary = [
    'finished in 1.00s, 100.00 req/s, 112.21KB/s',
    'requests: 100 total, 101 started, 97 done, 95 succeeded, 2 failed, 1 errored, 3 timeout',
    'status codes: 95 2xx, 0 3xx, 0 4xx, 0 5xx',
  ].join('\n');
  assert.equal(h2loadFailures(summary), 6);
  assert.equal(
    h2loadFailures(
      'requests: 100 total, 101 started, 100 done, 100 succeeded, 0 failed, 0 errored, 0 timeout',
    ),
    0,
  );
  assert.throws(() => h2loadFailures('connect failed'), /could not read h2load's summary/);
});

test('rateCommand prints how each generator is run', () => {
  assert.equal(
    rateCommand({ rate: 1000, clients: 10, arrival: 'spread', generator: 'h2load' }, 10),
    "10 × h2load --h1 -c 1 --rps 100 -D 10 --log-file <log> [-H ':authority: bench-upstream'] <url>, started 1 ms apart",
  );
  assert.equal(
    rateCommand({ rate: 1000, clients: 50, arrival: 'lockstep', generator: 'hey' }, 10),
    'hey -c 50 -q 20 -z 10s -o csv [-host bench-upstream] <url>',
  );
});

test("readHeyCsv: hey's -o csv, times in s to ms, non-200 counted, a cut line refused", () => {
  const head = 'response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset\n';
  const latencies: number[] = [];
  const csv = head + '0.0004,0.0001,0,0,0.0003,0,200,0.01\n0.0021,0,0,0,0.002,0,502,0.02\n';
  assert.equal(readHeyCsv(csv, latencies), 1);
  assert.deepEqual(latencies, [0.4, 2.1]);
  assert.throws(() => readHeyCsv(head + '0.0004,0.0001,0,0\n', []), /hey CSV line not understood/);
});

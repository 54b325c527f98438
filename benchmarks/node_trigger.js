#!/usr/bin/env node
// The official Node `pusher` library (5.2.0) in a sequential loop, for bench_throughput.py.
//
//   node benchmarks/node_trigger.js '{"port":N,"mode":"single"|"batch","seconds":1.0,
//                                     "warmup":0.2,"batchSize":10,"repeat":3}'
//
// Uses a keep-alive http.Agent (the library's `agent` option; it sends with node-fetch).
// Each repetition runs `trigger` (mode single) or `triggerBatch` (mode batch, batchSize events)
// one call at a time for `seconds`, and prints one JSON line:
//   {"mode", "requests", "events", "seconds", "cpu_s"}  (cpu_s: this process's user+system time)
'use strict';

const http = require('http');
const path = require('path');

function load(name) {
  for (const t of [name, path.join(__dirname, '..', 'peers', 'node_modules', name)]) {
    try {
      return require(t);
    } catch (e) {
      // next
    }
  }
  throw new Error(`${name} not found: run \`cd peers && npm ci\``);
}

const Pusher = load('pusher');
const opts = Object.assign(
  { mode: 'single', seconds: 1.0, warmup: 0.2, batchSize: 10, repeat: 1 },
  JSON.parse(process.argv[2] || '{}'),
);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const pusher = new Pusher({
  appId: String(opts.appId || '123456'),
  key: opts.key || 'bench-key',
  secret: opts.secret || 'bench-secret',
  host: '127.0.0.1',
  port: opts.port,
  useTLS: false,
  agent,
});

const data = { text: 'hello world', n: 42 };
const batch = [];
for (let i = 0; i < opts.batchSize; i++) {
  batch.push({ channel: 'bench-' + i, name: 'ev', data });
}

async function once() {
  if (opts.mode === 'batch') {
    const res = await pusher.triggerBatch(batch);
    await res.text();
    return opts.batchSize;
  }
  const res = await pusher.trigger('bench', 'ev', data);
  await res.text();
  return 1;
}

async function loop(seconds) {
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let requests = 0;
  let events = 0;
  while (process.hrtime.bigint() < end) {
    events += await once();
    requests += 1;
  }
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { mode: opts.mode, requests, events, seconds: elapsed, cpu_s: (cpu.user + cpu.system) / 1e6 };
}

(async () => {
  await loop(opts.warmup);
  for (let i = 0; i < opts.repeat; i++) {
    process.stdout.write(JSON.stringify(await loop(opts.seconds)) + '\n');
  }
  agent.destroy();
})().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});

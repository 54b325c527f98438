#!/usr/bin/env node
// A null Pusher HTTP API for benchmarks: uWebSockets.js on 127.0.0.1 answering every request
// with 200 `{}` (keep-alive), after reading the whole body.
//
//   node benchmarks/null_server.js [PORT] [--exit-on-eof]     (PORT 0 or nothing: a free port)
//
// Prints `{"port": N}` on one line once listening; stops on SIGTERM / SIGINT, and with
// --exit-on-eof also when its stdin closes (so it never outlives the process that started it).
'use strict';

const path = require('path');

function loadUws() {
  const tries = [
    'uWebSockets.js',
    path.join(__dirname, '..', 'peers', 'node_modules', 'uWebSockets.js'),
  ];
  for (const t of tries) {
    try {
      return require(t);
    } catch (e) {
      // next
    }
  }
  throw new Error('uWebSockets.js not found: run `cd peers && npm ci`');
}

const uWS = loadUws();
const args = process.argv.slice(2);
const port = parseInt(args.find((a) => /^\d+$/.test(a)) || '0', 10);
let requests = 0;
let bytes = 0;

const app = uWS.App();
app.any('/*', (res, req) => {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  res.onData((chunk, isLast) => {
    bytes += chunk.byteLength;
    if (!isLast || aborted) return;
    requests += 1;
    res.cork(() => {
      res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').end('{}');
    });
  });
});

let listenSocket = null;
app.listen('127.0.0.1', port, (token) => {
  if (!token) {
    process.stderr.write(`null_server: cannot listen on 127.0.0.1:${port}\n`);
    process.exit(1);
  }
  listenSocket = token;
  process.stdout.write(JSON.stringify({ port: uWS.us_socket_local_port(token) }) + '\n');
});

function stop() {
  process.stderr.write(`null_server: ${requests} requests, ${bytes} body bytes\n`);
  if (listenSocket) uWS.us_listen_socket_close(listenSocket);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (args.includes('--exit-on-eof')) {
  process.stdin.on('end', stop);
  process.stdin.resume();
}

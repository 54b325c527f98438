#!/usr/bin/env node
// A pusher-js (node build) client driven over stdin/stdout with JSON lines.
// Spawned by tests/peers/browser.py (BrowserClient); see there for the Python side.
//
// argv[2]: JSON options {key, wsHost, wsPort, authEndpoint, userAuthEndpoint,
//                        authParams, userAuthParams, activityTimeout, logToConsole}
// stdin commands (one JSON object a line):
//   {"cmd":"subscribe","channel":C}     {"cmd":"unsubscribe","channel":C}
//   {"cmd":"signin"}                     {"cmd":"disconnect"}          {"cmd":"connect"}
//   {"cmd":"members","channel":C}        {"cmd":"state"}               {"cmd":"exit"}
//   {"cmd":"trigger","channel":C,"event":E,"data":D}   (client event, needs client events enabled)
// stdout reports (one JSON object a line, each with "type" and "t" = ms since start):
//   ready, connected {socket_id}, state_change {previous,current}, disconnected,
//   connection_error {error}, subscribed {channel, members?, me?},
//   subscription_error {channel, status, error}, event {channel, event, data, user_id?},
//   member_added / member_removed {channel, id, info}, signed_in {user_data},
//   user_subscribed {channel} (the '#server-to-user-<id>' channel is subscribed),
//   user_event {event, data} (events sent with send_to_user), members {channel, ...},
//   state {state, socket_id}, error {error}, log {message}, exit
'use strict';

const path = require('path');

function findPusher() {
  const tries = [
    'pusher-js',
    path.join(__dirname, '..', '..', 'peers', 'node_modules', 'pusher-js'),
  ];
  for (const t of tries) {
    try {
      return require(t);
    } catch (e) {
      // try the next one
    }
  }
  throw new Error('pusher-js not found: run `cd peers && npm ci` or set NODE_PATH');
}

const Pusher = findPusher();
const opts = JSON.parse(process.argv[2] || '{}');
const started = Date.now();

function report(type, fields) {
  const obj = Object.assign({ type, t: Date.now() - started }, fields || {});
  let line;
  try {
    line = JSON.stringify(obj);
  } catch (e) {
    line = JSON.stringify({ type: 'error', t: obj.t, error: 'unserializable report: ' + String(e) });
  }
  process.stdout.write(line + '\n');
}

if (opts.logToConsole) {
  Pusher.logToConsole = true;
  Pusher.log = (msg) => report('log', { message: String(msg) });
}

const config = {
  cluster: 'mt1',
  wsHost: opts.wsHost || '127.0.0.1',
  wsPort: opts.wsPort,
  wssPort: opts.wsPort,
  forceTLS: false,
  enabledTransports: ['ws'],
  disabledTransports: ['xhr_streaming', 'xhr_polling', 'sockjs'],
  enableStats: false,
  channelAuthorization: {
    endpoint: opts.authEndpoint,
    transport: 'ajax',
    params: opts.authParams || {},
  },
  userAuthentication: {
    endpoint: opts.userAuthEndpoint,
    transport: 'ajax',
    params: opts.userAuthParams || {},
  },
};
if (opts.activityTimeout) config.activityTimeout = opts.activityTimeout;
if (opts.pongTimeout) config.pongTimeout = opts.pongTimeout;

const pusher = new Pusher(opts.key, config);
const conn = pusher.connection;

conn.bind('state_change', (states) => {
  report('state_change', { previous: states.previous, current: states.current });
  if (states.current === 'disconnected' || states.current === 'unavailable' ||
      states.current === 'failed') {
    report('disconnected', { state: states.current });
  }
});
conn.bind('connected', () => report('connected', { socket_id: conn.socket_id }));
// Errors and events carry nested Error objects, whose fields JSON.stringify skips.
function plain(value, depth) {
  if (value === null || value === undefined) return value === undefined ? null : value;
  if (typeof value !== 'object') return typeof value === 'function' ? String(value) : value;
  if (depth > 4) return String(value);
  if (Array.isArray(value)) return value.map((v) => plain(v, depth + 1));
  const out = {};
  const keys = new Set(Object.keys(value));
  if (value instanceof Error) ['name', 'message', 'code', 'status'].forEach((k) => keys.add(k));
  for (const k of keys) {
    if (k === 'target' || k === 'currentTarget' || k === 'stack') continue;
    try {
      if (value[k] !== undefined) out[k] = plain(value[k], depth + 1);
    } catch (e) {
      // skip unreadable properties
    }
  }
  return out;
}

conn.bind('error', (err) => report('connection_error', { error: plain(err, 0) }));

function membersOf(channel) {
  const m = channel.members;
  if (!m) return undefined;
  const list = [];
  m.each((member) => list.push({ id: member.id, info: member.info }));
  return { count: m.count, me: m.me, members: list };
}

const bound = new Set();

function subscribe(name) {
  const channel = pusher.subscribe(name);
  if (bound.has(name)) return;
  bound.add(name);
  channel.bind_global((eventName, data, metadata) => {
    if (eventName === 'pusher:subscription_succeeded') {
      report('subscribed', Object.assign({ channel: name }, membersOf(channel) || {}));
      return;
    }
    if (eventName === 'pusher:subscription_error') {
      report('subscription_error', {
        channel: name,
        status: data && data.status,
        error: data && (data.error !== undefined ? String(data.error) : data),
      });
      return;
    }
    if (eventName === 'pusher:member_added') {
      report('member_added', { channel: name, id: data.id, info: data.info });
    } else if (eventName === 'pusher:member_removed') {
      report('member_removed', { channel: name, id: data.id, info: data.info });
    }
    const ev = { channel: name, event: eventName, data };
    if (metadata && metadata.user_id !== undefined) ev.user_id = metadata.user_id;
    report('event', ev);
  });
}

pusher.user.bind_global((eventName, data) => {
  report('user_event', { event: eventName, data });
});

conn.bind('message', (event) => {
  if (event && event.event === 'pusher:signin_success') {
    let userData = event.data && event.data.user_data;
    try {
      userData = JSON.parse(userData);
    } catch (e) {
      // keep the raw string
    }
    report('signed_in', { user_data: userData });
    // pusher-js then subscribes to '#server-to-user-<id>' (send_to_user): report when done.
    const ch = pusher.user.serverToUserChannel;
    if (ch) {
      if (ch.subscribed) {
        report('user_subscribed', { channel: ch.name });
      } else {
        ch.bind('pusher:subscription_succeeded', () => report('user_subscribed', { channel: ch.name }));
      }
    }
  } else if (event && event.event === 'pusher:error') {
    report('pusher_error', { data: event.data });
  }
});

function handle(msg) {
  switch (msg.cmd) {
    case 'subscribe':
      subscribe(msg.channel);
      break;
    case 'unsubscribe':
      pusher.unsubscribe(msg.channel);
      bound.delete(msg.channel);
      report('unsubscribed', { channel: msg.channel });
      break;
    case 'signin':
      pusher.signin();
      break;
    case 'disconnect':
      pusher.disconnect();
      break;
    case 'connect':
      pusher.connect();
      break;
    case 'members': {
      const ch = pusher.channel(msg.channel);
      report('members', Object.assign({ channel: msg.channel }, (ch && membersOf(ch)) || {}));
      break;
    }
    case 'state':
      report('state', { state: conn.state, socket_id: conn.socket_id || null });
      break;
    case 'trigger': {
      const ch = pusher.channel(msg.channel);
      const ok = ch ? ch.trigger(msg.event, msg.data) : false;
      report('triggered', { channel: msg.channel, event: msg.event, ok });
      break;
    }
    case 'exit':
      shutdown(0);
      break;
    default:
      report('error', { error: 'unknown command: ' + JSON.stringify(msg) });
  }
}

let exiting = false;
function shutdown(code) {
  if (exiting) return;
  exiting = true;
  try {
    pusher.disconnect();
  } catch (e) {
    // ignore
  }
  report('exit', {});
  setTimeout(() => process.exit(code), 20);
}

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buf += chunk;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i).trim();
    buf = buf.slice(i + 1);
    if (!line) continue;
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      report('error', { error: 'bad JSON command: ' + line });
      continue;
    }
    try {
      handle(msg);
    } catch (e) {
      report('error', { error: String(e && e.stack ? e.stack : e) });
    }
  }
});
process.stdin.on('end', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
process.on('uncaughtException', (e) => {
  report('error', { error: 'uncaughtException: ' + String(e && e.stack ? e.stack : e) });
});

report('ready', { pid: process.pid });

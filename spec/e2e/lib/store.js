// pieces-gateway end-to-end helpers for the shared-store suites: gateways on a Redis, their
// store state, bursts of requests.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const path = require('node:path');
const { startGateway, sleep } = require('./gateway');

const ASAN = process.env.GW_BIN_ASAN ? path.resolve(process.env.GW_BIN_ASAN) : '';
const PROBE = '198.18.0.1'; // whitelisted: no rate limit (so no store call of its own)
const ADMIN = { Authorization: 'Bearer admin-test-key', 'X-Forwarded-For': PROBE };

function from(ip, extra = {}) {
  return { 'X-Forwarded-For': ip, ...extra }; // 127.0.0.1 is a trusted proxy by default
}

async function status(url, headers = {}, opts = {}) {
  const r = await fetch(url, { headers, ...opts });
  const body = await r.text();
  return { status: r.status, body };
}

// GET / from the whitelisted client
async function health(gw) {
  return (await (await fetch(`${gw.url}/`, { headers: from(PROBE) })).json()).store;
}

// Until the gateway's store is connected (every client) and not degraded.
async function connected(gw, ms = 10000) {
  const deadline = Date.now() + ms;
  let st;
  while (Date.now() < deadline) {
    st = await health(gw);
    if (st.connected && !st.degraded) return st;
    await sleep(25);
  }
  throw new Error(`store not connected: ${JSON.stringify(st)}`);
}

// Upstreams that refuse at once: no DNS, no TLS to the real services (a quick shutdown).
const NO_UPSTREAM = { GPT_GRPC_ADDR: 'http://127.0.0.1:9', VERTEX_GRPC_ADDR: 'http://127.0.0.1:9',
  MIN_POOL_SIZE: '1' };

function redisGateway(redis, env = {}, opts = {}) {
  return startGateway({ ...opts, env: { ...NO_UPSTREAM, SHARED_STORE: redis.url, WORKERS: '2',
    IP_WHITELIST: PROBE, ...env } });
}

function count(statuses) {
  const out = {};
  for (const s of statuses) out[s] = (out[s] || 0) + 1;
  return out;
}

// n requests at once, spread over the urls, from one client IP.
async function burst(urls, n, ip) {
  const all = [];
  for (let i = 0; i < n; i++) {
    all.push(status(`${urls[i % urls.length]}/v1/models`, from(ip)).then((r) => r.status));
  }
  return count(await Promise.all(all));
}

// Until fn() is true (polled every 2 ms); returns the ms it took.
async function within(ms, fn, what) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn()) return Date.now() - t0;
    await sleep(2);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

module.exports = { ASAN, PROBE, ADMIN, NO_UPSTREAM, from, status, health, connected, redisGateway, burst,
  within, sleep };

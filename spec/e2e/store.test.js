// pieces-gateway end-to-end: the shared store. Rate limits and bans shared by several gateway
// instances through a real redis-server, the local store's exact limits, and every failure
// mode of the store (down, killed under load, slow, restarted), on the release binary and,
// for the failure modes, the ASan+UBSan one (GW_BIN_ASAN) too.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { startGateway, sleep, tmpDir, BIN } = require('./lib/gateway');
const { startRedis } = require('./lib/redis');

const ASAN = process.env.GW_BIN_ASAN || '';
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

function redisGateway(redis, env = {}, opts = {}) {
  return startGateway({ ...opts, env: { SHARED_STORE: redis.url, WORKERS: '2',
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

test('rate limits: two instances x two workers share RATE_LIMIT exactly through Redis', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  // a generous timeout: the point is exactness when nothing fails (a timed-out call would
  // follow SHARED_STORE_ON_ERROR=local: that instance's own count)
  const env = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT: '100', RATE_LIMIT_WINDOW: '600',
    BLACKLIST_MODE: 'off', SHARED_STORE_TIMEOUT_MS: '5000' };
  const a = await redisGateway(redis, env);
  t.after(() => a.stop());
  const b = await redisGateway(redis, env);
  t.after(() => b.stop());
  await connected(a);
  await connected(b);
  const before = await redis.cmd('INFO', 'commandstats');
  assert.deepEqual(await burst([a.url, b.url], 400, '198.51.100.1'), { 200: 100, 429: 300 });
  // one round trip per request: an EVALSHA each, nothing else
  const calls = (info, cmd) => Number((info.match(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`)) || [0, 0])[1]);
  const after = await redis.cmd('INFO', 'commandstats');
  assert.equal(calls(after, 'evalsha') - calls(before, 'evalsha'), 400);
  const keys = await redis.cmd('KEYS', 'gw:rl:default:198.51.100.1:*');
  assert.equal(keys.length, 1);
  assert.equal(await redis.cmd('GET', keys[0]), '100');
  assert.ok(Number(await redis.cmd('PTTL', keys[0])) > 1000000, 'the window key expires');
  for (const gw of [a, b]) {
    const st = await health(gw);
    assert.equal(st.errors + st.timeouts, 0, JSON.stringify(st));
  }
});

test('rate limits: the local store admits exactly RATE_LIMIT over two racing workers', async (t) => {
  const gw = await startGateway({ env: { WORKERS: '2', RATE_LIMIT_ENABLED: 'true',
    RATE_LIMIT: '100', RATE_LIMIT_WINDOW: '600', BLACKLIST_MODE: 'off' } });
  t.after(() => gw.stop());
  assert.equal((await health(gw)).type, 'local');
  assert.deepEqual(await burst([gw.url], 400, '198.51.100.2'), { 200: 100, 429: 300 });
});

// Until fn() is true (polled every 2 ms); returns the ms it took.
async function within(ms, fn, what) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn()) return Date.now() - t0;
    await sleep(2);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

test('bans: made through instance A, refused by B within 100 ms; lifted through B, free on A',
  async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const env = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT: '1', RATE_LIMIT_WINDOW: '600',
      BLACKLIST_THRESHOLD: '2' };
    const a = await redisGateway(redis, env);
    t.after(() => a.stop());
    const b = await redisGateway(redis, env);
    t.after(() => b.stop());
    await connected(a);
    await connected(b);
    const ip = '203.0.113.66';
    assert.equal((await status(`${a.url}/v1/models`, from(ip))).status, 200);
    assert.equal((await status(`${b.url}/v1/models`, from(ip))).status, 429); // violation 1
    assert.equal((await status(`${a.url}/v1/models`, from(ip))).status, 429); // 2: the ban
    const banned = async (gw) => (await status(`${gw.url}/v1/models`, from(ip))).status === 403;
    // the ban is made in A's log phase, right after the 429 went out
    const ms = await within(1000, () => banned(b), 'ban seen by B');
    assert.ok(ms < 100, `B refused the banned IP after ${ms} ms`);
    assert.ok(await banned(a));
    assert.ok((await redis.cmd('HKEYS', 'gw-map:bans')).includes(ip));
    // GET /admin/blacklist on B serves the ban made on A
    assert.match((await status(`${b.url}/admin/blacklist`, ADMIN)).body, /203\.0\.113\.66/);
    // lift it through B (CIDR syntax and unknown bans are checked too)
    let r = await status(`${b.url}/admin/blacklist/${ip}`, ADMIN, { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'removed', ip });
    // (still over its rate limit: a 429, but its violations were forgotten: no new ban yet)
    const free = async (gw) => (await status(`${gw.url}/v1/models`, from(ip))).status !== 403;
    const ms2 = await within(1000, () => free(a), 'unban seen by A');
    assert.ok(ms2 < 100, `A let the IP in again after ${ms2} ms`);
    r = await status(`${b.url}/admin/blacklist/${ip}`, ADMIN, { method: 'DELETE' });
    assert.equal(r.status, 404);
    assert.equal(JSON.parse(r.body).error.code, 'ban_not_found');
    r = await status(`${b.url}/admin/blacklist/not-an-ip`, ADMIN, { method: 'DELETE' });
    assert.equal(r.status, 400);
    r = await status(`${b.url}/admin/blacklist/${ip}`, from(PROBE), { method: 'DELETE' });
    assert.equal(r.status, 401, 'the admin key is required');
    assert.ok(!(await redis.cmd('HKEYS', 'gw-map:bans')).includes(ip));
    await sleep(300); // the persistence thread
    assert.doesNotMatch(fs.readFileSync(path.join(b.dir, 'blacklist.txt'), 'utf8'), /203\.0\.113/);
    assert.doesNotMatch((await status(`${a.url}/admin/blacklist`, ADMIN)).body, /203\.0\.113/);
  });

test('bans: DELETE /admin/blacklist/{cidr} with the local store rewrites the file', async (t) => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'blacklist.txt'),
    '{"ip":"192.0.2.0/24","type":"subnet","added_at":"2026-01-01T00:00:00Z","violations":5}\n'
    + '{"ip":"198.51.100.9","type":"ip","added_at":"2026-01-02T00:00:00Z","violations":5}\n');
  const gw = await startGateway({ dir, env: { WORKERS: '2' } });
  t.after(() => gw.stop());
  assert.equal((await status(`${gw.url}/v1/models`, from('192.0.2.7'))).status, 403);
  const r = await status(`${gw.url}/admin/blacklist/192.0.2.0%2F24`, ADMIN, { method: 'DELETE' });
  assert.equal(r.status, 200, r.body);
  // every worker sees it at once (one dictionary), without a restart
  for (let i = 0; i < 10; i++) {
    assert.equal((await status(`${gw.url}/v1/models`, from('192.0.2.7'))).status, 200);
  }
  assert.equal((await status(`${gw.url}/v1/models`, from('198.51.100.9'))).status, 403);
  await sleep(300);
  const file = fs.readFileSync(path.join(dir, 'blacklist.txt'), 'utf8');
  assert.doesNotMatch(file, /192\.0\.2\.0/);
  assert.match(file, /198\.51\.100\.9/);
});

// Requests from `clients` concurrent loops until stop(); every answer is recorded with the
// time its request started.
function load(gw, clients, ip) {
  const seen = [];
  let running = true;
  const loops = [];
  for (let i = 0; i < clients; i++) {
    loops.push((async () => {
      while (running) {
        const t0 = Date.now();
        try {
          const r = await status(`${gw.url}/v1/models`, from(ip), { signal: AbortSignal.timeout(10000) });
          seen.push({ status: r.status, code: r.status === 200 ? '' : r.body, t0, ms: Date.now() - t0 });
        } catch (e) {
          seen.push({ status: 'error', code: String(e), t0, ms: Date.now() - t0 });
        }
      }
    })());
  }
  return { seen, stop: async () => { running = false; await Promise.all(loops); } };
}

const MODES = {
  open: { status: 200 },
  local: { status: 200 },
  closed: { status: 503, code: 'store_unavailable' },
};

for (const [mode, want] of Object.entries(MODES)) {
  for (const bin of [BIN, ASAN].filter(Boolean)) {
    const flavour = bin === ASAN ? 'ASan' : 'release';
    test(`Redis killed under load, SHARED_STORE_ON_ERROR=${mode} (${flavour}): documented answers, then back within 2 s`, async (t) => {
      const redis = await startRedis();
      t.after(() => redis.stop('SIGKILL'));
      // a generous call timeout: this test is about the store going away, not about slowness
      const gw = await redisGateway(redis, { SHARED_STORE_ON_ERROR: mode, RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT: '1000000', SHARED_STORE_TIMEOUT_MS: '2000' }, { bin });
      t.after(() => gw.stop());
      await connected(gw, 20000);
      const l = load(gw, 16, '198.51.100.3');
      await within(10000, async () => l.seen.length >= 16, 'load running');
      await redis.stop('SIGKILL');
      const killed = Date.now();
      // what started 100 ms after the kill must get the mode's answer (the loss is seen at once)
      const after = () => l.seen.filter((r) => r.t0 > killed + 100);
      await within(20000, async () => after().length >= 32, 'answers while Redis is down');
      await l.stop();
      for (const r of l.seen) {
        assert.ok(r.status === 200 || r.status === want.status, JSON.stringify(r));
      }
      for (const r of after()) {
        assert.equal(r.status, want.status, JSON.stringify(r));
        if (want.code) assert.equal(JSON.parse(r.code).error.code, want.code);
      }
      let st = await health(gw);
      assert.equal(st.degraded, true);
      assert.equal(st.connected, false);
      assert.match(gw.log, /shared store 127\.0\.0\.1:\d+ degraded/);
      assert.equal((gw.log.match(/shared store .* degraded/g) || []).length, 1, 'logged once');
      // Redis back on the same port: the gateway reconnects and shares state again
      await redis.start();
      const ms = await within(2000, async () => (await health(gw)).connected, 'reconnected');
      const r = await status(`${gw.url}/v1/models`, from('198.51.100.4'));
      assert.equal(r.status, 200);
      assert.equal((await redis.cmd('KEYS', 'gw:rl:default:198.51.100.4:*')).length, 1,
        `state shared again (${ms} ms): ${JSON.stringify(await health(gw))}`);
      st = await health(gw);
      assert.ok(st.errors > 0);
      assert.doesNotMatch(gw.log, /\[error\]/);
    });
  }
}

// DEBUG SLEEP makes Redis answer nothing for `seconds`; resolves when it answers again.
function sleepRedis(redis, seconds) {
  return redis.cmd('DEBUG', 'SLEEP', String(seconds));
}

test('a slow store: calls time out per SHARED_STORE_TIMEOUT_MS and follow SHARED_STORE_ON_ERROR', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const env = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT: '1000000', SHARED_STORE_TIMEOUT_MS: '150' };
  const closed = await redisGateway(redis, { ...env, SHARED_STORE_ON_ERROR: 'closed' });
  t.after(() => closed.stop());
  const local = await redisGateway(redis, { ...env, SHARED_STORE_ON_ERROR: 'local' });
  t.after(() => local.stop());
  await connected(closed);
  await connected(local);
  const asleep = sleepRedis(redis, 1.5);
  await sleep(100);
  const t0 = Date.now();
  const [c, l] = await Promise.all([
    status(`${closed.url}/v1/models`, from('198.51.100.5')),
    status(`${local.url}/v1/models`, from('198.51.100.5')),
  ]);
  const ms = Date.now() - t0;
  assert.equal(c.status, 503);
  assert.equal(JSON.parse(c.body).error.code, 'store_unavailable');
  assert.equal(l.status, 200);
  assert.ok(ms >= 100 && ms < 900, `answered after ${ms} ms (timeout 150 ms, Redis asleep 1.5 s)`);
  await asleep;
  assert.equal((await status(`${closed.url}/v1/models`, from('198.51.100.5'))).status, 200);
});

// Raw HTTP: send a request and close the socket after `ms` without reading the answer.
function sendAndLeave(port, ms, ip) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\n\r\n`);
      setTimeout(() => { sock.destroy(); resolve(); }, ms);
    });
    sock.on('error', () => resolve());
  });
}

for (const bin of [BIN, ASAN].filter(Boolean)) {
  const flavour = bin === ASAN ? 'ASan' : 'release';
  test(`requests suspended on the store (${flavour}): a client that leaves is cleaned up, a reload and SIGTERM wait for them`, async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const gw = await redisGateway(redis, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT: '1000000',
      SHARED_STORE_TIMEOUT_MS: '3000', WORKERS: '1' }, { bin });
    await connected(gw, 20000);
    let asleep = sleepRedis(redis, 1);
    await sleep(100);
    // 20 clients leave while their requests wait for Redis
    await Promise.all(Array.from({ length: 20 }, (_, i) => sendAndLeave(gw.port, 100, `198.51.100.${10 + i}`)));
    // one stays, across a reload (it finishes on the VM it started on)
    const stays = status(`${gw.url}/v1/models`, from('198.51.100.40'));
    await sleep(50);
    gw.proc.kill('SIGHUP');
    await within(3000, async () => /policies reloaded/.test(gw.log), 'reload');
    await asleep;
    assert.equal((await stays).status, 200);
    await sleep(200);
    assert.equal((gw.log.match(/Status=499/g) || []).length, 20, gw.log.slice(-3000));
    // SIGTERM while a request is suspended: it completes before the process exits
    asleep = sleepRedis(redis, 0.8);
    await sleep(100);
    const last = status(`${gw.url}/v1/models`, from('198.51.100.41'));
    await sleep(100);
    const exited = gw.stop();
    assert.equal((await last).status, 200);
    assert.equal((await exited).code, 0);
    await asleep;
  });
}

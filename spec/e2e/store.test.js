// pieces-gateway end-to-end: the shared store. Rate limits and bans shared by several gateway
// instances through a real redis-server (started on a free loopback port, no persistence),
// the local store's exact limits, DELETE /admin/blacklist/{ip} for both stores. The failure
// modes are in store_faults.test.js.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startGateway, sleep, tmpDir } = require('./lib/gateway');
const { startRedis, pipeline } = require('./lib/redis');
const { PROBE, ADMIN, NO_UPSTREAM, from, status, health, connected, redisGateway, burst,
  within } = require('./lib/store');

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

test('rate limits: the previous window weighs in Redis; a flushed script is sent again', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const gw = await redisGateway(redis, { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT: '5',
    RATE_LIMIT_WINDOW: '600', BLACKLIST_MODE: 'off', SHARED_STORE_TIMEOUT_MS: '5000' });
  t.after(() => gw.stop());
  await connected(gw);
  // a full previous window: its weight (sent as m * 2^e) keeps the client out...
  const ip = '198.51.100.77';
  const idx = Math.floor(Date.now() / 1000 / 600);
  await redis.cmd('SET', `gw:rl:default:${ip}:${idx - 1}`, '1000000');
  assert.equal((await status(`${gw.url}/v1/models`, from(ip))).status, 429);
  // ...an empty one lets it in, counted in Redis
  const ip2 = '198.51.100.78';
  for (let i = 0; i < 3; i++) {
    assert.equal((await status(`${gw.url}/v1/models`, from(ip2))).status, 200);
  }
  // NOSCRIPT: the body goes again (EVAL), the count goes on where it was
  assert.equal(await redis.cmd('SCRIPT', 'FLUSH'), 'OK');
  const codes = [];
  for (let i = 0; i < 3; i++) codes.push((await status(`${gw.url}/v1/models`, from(ip2))).status);
  assert.deepEqual(codes, [200, 200, 429]);
  const info = await redis.cmd('INFO', 'commandstats');
  assert.match(info, /cmdstat_eval:calls=[1-9]/, 'the script was sent as EVAL');
  const st = await health(gw);
  assert.equal(st.errors + st.timeouts, 0, JSON.stringify(st)); // Redis decided, not a fallback
});

test('rate limits: the local store admits exactly RATE_LIMIT over two racing workers', async (t) => {
  const gw = await startGateway({ env: { ...NO_UPSTREAM, WORKERS: '2', RATE_LIMIT_ENABLED: 'true',
    RATE_LIMIT: '100', RATE_LIMIT_WINDOW: '600', BLACKLIST_MODE: 'off' } });
  t.after(() => gw.stop());
  assert.equal((await health(gw)).type, 'local');
  assert.deepEqual(await burst([gw.url], 400, '198.51.100.2'), { 200: 100, 429: 300 });
});

test('AUTH and SELECT: the password works and never shows in a log or an answer', async (t) => {
  const pw = 'pw-s3cr3t-0123';
  const redis = await startRedis({ args: ['--requirepass', pw] });
  t.after(() => redis.stop());
  const url = `redis://:${pw}@127.0.0.1:${redis.port}/3`;
  const gw = await redisGateway(redis, { SHARED_STORE: url, RATE_LIMIT_ENABLED: 'true',
    RATE_LIMIT: '5' });
  t.after(() => gw.stop());
  const st = await connected(gw);
  assert.equal(st.db, 3);
  assert.equal((await status(`${gw.url}/v1/models`, from('198.51.100.50'))).status, 200);
  const [auth, sel, keys] = await pipeline(redis.port, [['AUTH', pw], ['SELECT', '3'],
    ['KEYS', 'gw:rl:*198.51.100.50*']]);
  assert.equal(auth, 'OK');
  assert.equal(sel, 'OK');
  assert.equal(keys.length, 1, 'the window lives in database 3');
  const policies = await status(`${gw.url}/admin/policies`, ADMIN);
  for (const text of [gw.log, policies.body, JSON.stringify(await health(gw))]) {
    assert.ok(!text.includes(pw), 'the password leaked');
  }
  // a wrong password: degraded, logged without it
  const bad = await redisGateway(redis, { SHARED_STORE: `redis://:wrong-${pw}@127.0.0.1:${redis.port}/0` });
  t.after(() => bad.stop());
  await within(5000, async () => /degraded .*AUTH\/SELECT failed/.test(bad.log), 'AUTH failure logged');
  assert.equal((await health(bad)).connected, false);
  assert.ok(!bad.log.includes(pw));
});

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
  const gw = await startGateway({ dir, env: { ...NO_UPSTREAM, WORKERS: '2' } });
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


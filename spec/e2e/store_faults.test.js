// pieces-gateway end-to-end: the shared store's failure modes against a real redis-server:
// killed under load (open / closed / local), restarted, slow (DEBUG SLEEP), and requests
// suspended on it (a client that leaves, a reload, SIGTERM), on the release binary and the
// ASan+UBSan one (GW_BIN_ASAN).
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { BIN } = require('./lib/gateway');
const { startRedis } = require('./lib/redis');
const { ASAN, from, status, health, connected, redisGateway, within, sleep } = require('./lib/store');

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
      const logAt = gw.log.length;
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
      const logged = gw.log.slice(logAt);
      assert.match(logged, /shared store 127\.0\.0\.1:\d+ degraded/);
      assert.equal((logged.match(/shared store .* degraded/g) || []).length, 1, 'logged once');
      // Redis back on the same port: the gateway reconnects and shares state again
      await redis.start();
      const ms = await within(2000, async () => (await health(gw)).connected, 'reconnected');
      const r = await status(`${gw.url}/v1/models`, from('198.51.100.4'));
      assert.equal(r.status, 200);
      assert.equal((await redis.cmd('KEYS', 'gw:rl:default:198.51.100.4:*')).length, 1,
        `state shared again (${ms} ms): ${JSON.stringify(await health(gw))}`);
      st = await health(gw);
      assert.ok(st.errors > 0);
      await within(3000, async () => /shared store .* recovered after/.test(gw.log.slice(logAt)),
        'the end of the degraded period is logged');
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

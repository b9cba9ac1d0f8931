// pieces-gateway end-to-end: the Lua policies against the built binary, and hot reload.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { startMock } = require('./mock/mock');
const { ROOT, startGateway, runBin, tmpDir, sleep, baseEnv } = require('./lib/gateway');

const USER = [{ role: 'user', content: 'hi' }];

function get(gw, p, headers = {}) {
  return fetch(`${gw.url}${p}`, { headers });
}

function post(gw, p, body, headers = {}) {
  return fetch(`${gw.url}${p}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function withMock(t) {
  const mock = await startMock({});
  t.after(() => mock.close());
  const addr = `http://127.0.0.1:${mock.port}`;
  return { mock, env: { GPT_GRPC_ADDR: addr, VERTEX_GRPC_ADDR: addr, MIN_POOL_SIZE: '1' } };
}

test('auth: API_KEY on API, model and foolproof routes, with the three messages', async (t) => {
  const { mock, env } = await withMock(t);
  const gw = await startGateway({ env: { ...env, API_KEY: 'k1,k2', ENABLE_MODEL_ROUTE: 'true',
    ENABLE_FOOLPROOF_ROUTE: 'true' } });
  t.after(() => gw.stop());
  const msg = async (r) => [r.status, (await r.json()).error.message];
  assert.deepEqual(await msg(await get(gw, '/v1/models')), [401, 'Missing authentication information']);
  assert.deepEqual(await msg(await get(gw, '/v1/models', { Authorization: 'Basic k1' })), [401, 'Invalid authentication format']);
  assert.deepEqual(await msg(await get(gw, '/v1/models', { Authorization: 'bearer k1' })), [401, 'Invalid authentication format']);
  assert.deepEqual(await msg(await get(gw, '/v1/models', { Authorization: 'Bearer k3' })), [401, 'Invalid API key']);
  assert.deepEqual(await msg(await get(gw, '/v1/models', { Authorization: 'Bearer  k1' })), [401, 'Invalid API key']);
  assert.deepEqual(await msg(await get(gw, '/v1/unknown')), [401, 'Missing authentication information']);
  assert.equal((await get(gw, '/v1/models', { Authorization: 'Bearer k1' })).status, 200);
  assert.equal((await get(gw, '/v1/models', { Authorization: 'Bearer k2' })).status, 200);
  assert.equal((await get(gw, '/')).status, 200, 'health needs no key');
  assert.equal((await get(gw, '/ping')).status, 200);
  assert.equal((await post(gw, '/gpt-4o/v1/chat/completions', { messages: USER })).status, 401);
  assert.equal((await post(gw, '/v1/completions', { model: 'gpt-4', messages: USER })).status, 401);
  const r = await post(gw, '/gpt-4o/v1/chat/completions', { messages: USER }, { Authorization: 'Bearer k2' });
  assert.equal(r.status, 200);
  assert.equal((await r.json()).model, 'gpt-4o');
  assert.equal(mock.requests.at(-1).model, 'gpt-4o');
});

test('model routes and foolproof routes', async (t) => {
  const { mock, env } = await withMock(t);
  const gw = await startGateway({ env: { ...env, ENABLE_MODEL_ROUTE: 'true', ENABLE_FOOLPROOF_ROUTE: 'true' } });
  t.after(() => gw.stop());
  let r = await post(gw, '/claude-3-haiku-20240307/v1/chat/completions', { messages: USER });
  assert.equal(r.status, 200);
  assert.equal(mock.requests.at(-1).model, 'claude-3-haiku@20240307');
  r = await post(gw, '/claude-3-haiku@20240307/v1/chat/completions', { model: 'gpt-4o-mini', messages: USER });
  assert.equal(mock.requests.at(-1).model, 'gpt-4o-mini', "the body's valid model wins");
  r = await post(gw, '/gpt-4/v1/chat/completions', { model: 'nope', messages: USER });
  assert.equal((await r.json()).model, 'gpt-4', 'an invalid body model falls back to the URL model');
  assert.equal((await get(gw, '/gpt-4/v1/chat/completions')).status, 405);
  for (const p of ['/v1/completions', '/chat/completions/', '/completions/v1/chat/completions', '/v1/chat/completions/v1/completions/']) {
    r = await post(gw, p, { model: 'gpt-4', messages: USER });
    assert.equal(r.status, 200, p);
    assert.equal(r.headers.get('x-warning'), 'Non-standard path, please use: /v1/chat/completions');
  }
  assert.equal((await get(gw, '/v1/completions')).status, 405);
  r = await post(gw, '/v1/chat/completions', { model: 'gpt-4', messages: USER });
  assert.equal(r.headers.get('x-warning'), null);
});

test('rate limits with headers, auto-ban persisted across a restart', async (t) => {
  const dir = tmpDir();
  const env = { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT: '3', RATE_LIMIT_WINDOW: '60', BLACKLIST_THRESHOLD: '2' };
  let gw = await startGateway({ dir, env });
  try {
    // the start-up probe (GET /ping) was the first request of the window
    for (let i = 0; i < 2; i++) {
      const r = await get(gw, '/v1/models');
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('ratelimit-limit'), '3');
      assert.equal(r.headers.get('ratelimit-remaining'), String(1 - i));
    }
    let r = await get(gw, '/v1/models');
    assert.equal(r.status, 429);
    assert.deepEqual(await r.json(), { error: { message: 'Rate limit exceeded', type: 'error', code: 'rate_limit_exceeded' } });
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    assert.equal(r.headers.get('ratelimit-remaining'), '0');
    assert.ok(r.headers.get('ratelimit-reset'));
    r = await get(gw, '/v1/models');
    assert.equal(r.status, 429);
    await sleep(100);
    r = await get(gw, '/ping');
    assert.equal(r.status, 403, 'banned at the threshold');
    assert.deepEqual(await r.json(), { error: { message: 'IP has been blocked', type: 'error', code: 'ip_blocked' } });
    await sleep(300);
    const lines = fs.readFileSync(path.join(dir, 'blacklist.txt'), 'utf8').trim().split('\n');
    const entry = JSON.parse(lines[0]);
    assert.equal(entry.ip, '127.0.0.1');
    assert.equal(entry.type, 'ip');
    assert.equal(entry.violations, 2);
    assert.match(entry.added_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
  } finally {
    await gw.stop();
  }
  gw = await startGateway({ dir, env });
  t.after(() => gw.stop());
  assert.equal((await get(gw, '/v1/models')).status, 403, 'the ban survives a restart');
});

test('IP rules: blacklist CIDRs, whitelist exempt from limits, X-Forwarded-For trust', async (t) => {
  await t.test('trusted peer: X-Forwarded-For honoured', async () => {
    const gw = await startGateway({ env: { IP_BLACKLIST: '203.0.113.0/24, 2001:db8::/32', IP_WHITELIST: '198.51.100.7',
      RATE_LIMIT_ENABLED: 'true', RATE_LIMIT: '1', BLACKLIST_MODE: 'off' } });
    try {
      let r = await get(gw, '/v1/models', { 'X-Forwarded-For': '203.0.113.50' });
      assert.equal(r.status, 403);
      assert.equal((await r.json()).error.code, 'ip_blocked');
      r = await get(gw, '/v1/models', { 'X-Forwarded-For': '2001:DB8::1' });
      assert.equal(r.status, 403);
      for (let i = 0; i < 4; i++) {
        r = await get(gw, '/v1/models', { 'X-Forwarded-For': '198.51.100.7' });
        assert.equal(r.status, 200, 'whitelisted: no rate limit');
      }
      assert.equal((await get(gw, '/v1/models', { 'X-Forwarded-For': '192.0.2.1' })).status, 200);
      assert.equal((await get(gw, '/v1/models', { 'X-Forwarded-For': '192.0.2.1' })).status, 429);
      assert.equal((await get(gw, '/v1/models', { 'X-Forwarded-For': '192.0.2.2' })).status, 200, 'per client IP');
      await sleep(100);
      assert.match(gw.stdout, /GET \/v1\/models IP=192\.0\.2\.2 Status=200/);
    } finally { await gw.stop(); }
  });

  await t.test('untrusted peer: X-Forwarded-For ignored', async () => {
    const gw = await startGateway({ env: { IP_BLACKLIST: '203.0.113.0/24', TRUSTED_PROXIES: '10.0.0.0/8' } });
    try {
      const r = await get(gw, '/v1/models', { 'X-Forwarded-For': '203.0.113.50', 'X-Real-IP': '203.0.113.50' });
      assert.equal(r.status, 200);
      await sleep(100);
      assert.match(gw.stdout, /GET \/v1\/models IP=127\.0\.0\.1 Status=200/);
    } finally { await gw.stop(); }
  });
});

test('admin endpoints', async (t) => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'blacklist.txt'), '{"ip":"192.0.2.99","type":"ip","added_at":"2026-01-01T00:00:00Z","violations":5}\n');
  const gw = await startGateway({ dir, env: { ADMIN_KEY: 'adm' } });
  t.after(() => gw.stop());
  let r = await get(gw, '/admin/blacklist');
  assert.equal(r.status, 401);
  assert.deepEqual(await r.json(), { error: { message: 'Unauthorized', type: 'error', code: 'unauthorized' } });
  r = await get(gw, '/admin/blacklist', { Authorization: 'Bearer nope' });
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.code, 'forbidden');
  r = await get(gw, '/admin/blacklist', { Authorization: 'Bearer adm' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-disposition'), 'attachment; filename=blacklist.txt');
  assert.match(r.headers.get('content-type'), /^text\/plain/);
  const text = await r.text();
  assert.match(text, /192\.0\.2\.99/);
  // served like a static file: Last-Modified, Accept-Ranges, Range -> 206, If-Modified-Since -> 304
  const file = path.join(dir, 'blacklist.txt');
  fs.utimesSync(file, 1700000000.75, 1700000000.75);
  const lastModified = 'Tue, 14 Nov 2023 22:13:20 GMT';
  r = await get(gw, '/admin/blacklist', { Authorization: 'Bearer adm' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('last-modified'), lastModified);
  assert.equal(r.headers.get('accept-ranges'), 'bytes');
  assert.equal(r.headers.get('content-type'), 'text/plain');
  assert.equal(r.headers.get('content-length'), String(text.length));
  assert.equal(await r.text(), text);
  r = await get(gw, '/admin/blacklist', { Authorization: 'Bearer adm', Range: 'bytes=7-16' });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), `bytes 7-16/${text.length}`);
  assert.equal(r.headers.get('content-length'), '10');
  assert.equal(r.headers.get('content-disposition'), 'attachment; filename=blacklist.txt');
  assert.equal(await r.text(), text.slice(7, 17));
  r = await get(gw, '/admin/blacklist', { Authorization: 'Bearer adm', Range: 'bytes=-5' });
  assert.equal(r.status, 206);
  assert.equal(await r.text(), text.slice(-5));
  r = await get(gw, '/admin/blacklist', { Authorization: 'Bearer adm', Range: 'bytes=9999-' });
  assert.equal(r.status, 416);
  assert.equal(r.statusText, 'Range Not Satisfiable');
  assert.equal(r.headers.get('content-range'), `bytes */${text.length}`);
  await r.text();
  r = await get(gw, '/admin/blacklist', { Authorization: 'Bearer adm', 'If-Modified-Since': lastModified });
  assert.equal(r.status, 304);
  assert.equal(r.headers.get('last-modified'), lastModified);
  assert.equal(r.headers.get('content-length'), null);
  assert.equal(r.headers.get('content-type'), null);
  assert.equal(await r.text(), '');
  r = await get(gw, '/admin/blacklist', { Authorization: 'Bearer adm', 'If-Modified-Since': 'Tue, 14 Nov 2023 22:13:19 GMT' });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), text);
  r = await get(gw, '/admin/policies', { Authorization: 'Bearer adm' });
  const st = await r.json();
  assert.ok(st.policies.includes('auth') && st.policies.includes('chat'));
  assert.equal(st.last_reload.ok, true);
  const v = st.config_version;
  r = await fetch(`${gw.url}/admin/reload`, { method: 'POST', headers: { Authorization: 'Bearer adm' } });
  assert.equal(r.status, 200);
  await sleep(300);
  const st2 = await (await get(gw, '/admin/policies', { Authorization: 'Bearer adm' })).json();
  assert.equal(st2.config_version, v + 1);
  assert.equal((await get(gw, '/v1/models', { 'X-Forwarded-For': '192.0.2.99' })).status, 403, 'bans from the file apply');
  assert.equal((await get(gw, '/admin/nothing', { Authorization: 'Bearer adm' })).status, 404);
  assert.equal((await fetch(`${gw.url}/admin/blacklist`, { method: 'POST', headers: { Authorization: 'Bearer adm' } })).status, 405);
});

function policyWithVersion(v) {
  return [
    '-- test policy: tags every response with its version',
    'local _M = { name = "tagger" }',
    'function _M.new(conf) return setmetatable({ v = conf.v or "' + v + '" }, { __index = _M }) end',
    'function _M:access(r) r.resp:set_header("X-Policy-Version", "' + v + '") end',
    'return _M', ''].join('\n');
}

test('hot reload under load: new behaviour within a second, no failed request', async (t) => {
  const { mock, env } = await withMock(t);
  mock.on('gpt', [{ text: 'a', delay: 20 }, { text: 'b', delay: 20 }, { code: 204 }]);
  const dir = tmpDir();
  const pol = path.join(dir, 'policies');
  fs.cpSync(path.join(ROOT, 'policies'), pol, { recursive: true });
  fs.writeFileSync(path.join(pol, 'tagger.lua'), policyWithVersion('1'));
  const cfg = path.join(dir, 'gateway.lua');
  fs.writeFileSync(cfg, fs.readFileSync(path.join(ROOT, 'gateway.lua'), 'utf8')
    .replace('policies = {', 'policies = {\n        { name = "tagger" },'));
  const gw = await startGateway({ dir, config: cfg, env: { ...env, POLICIES_DIR: pol, WORKERS: '2', ADMIN_KEY: 'adm' } });
  t.after(() => gw.stop());

  let stop = false;
  const failures = [];
  const seen = [];
  const worker = async () => {
    while (!stop) {
      try {
        const r = await get(gw, '/v1/models');
        if (r.status !== 200) failures.push(r.status);
        seen.push([Date.now(), r.headers.get('x-policy-version')]);
        await r.arrayBuffer();
        const s = await post(gw, '/v1/chat/completions', { model: 'gpt-4', messages: USER, stream: true });
        const text = await s.text();
        if (s.status !== 200 || !text.endsWith('data: [DONE]\n\n')) failures.push(`stream ${s.status}`);
      } catch (e) { failures.push(e.message); }
    }
  };
  const workers = [worker(), worker(), worker(), worker()];
  await sleep(300);
  const t0 = Date.now();
  fs.writeFileSync(path.join(pol, 'tagger.lua'), policyWithVersion('2'));
  let switched = 0;
  while (Date.now() - t0 < 3000) {
    const last = seen.at(-1);
    if (last && last[1] === '2' && last[0] > t0) { switched = last[0]; break; }
    await sleep(20);
  }
  assert.ok(switched, 'the new version is served');
  assert.ok(switched - t0 < 1000, `switched after ${switched - t0} ms`);

  // a broken file: the old policies keep serving, the error is visible with file and line
  fs.writeFileSync(path.join(pol, 'tagger.lua'), 'local _M = {\nfunction oops(\nreturn _M\n');
  await sleep(800);
  stop = true;
  await Promise.all(workers);
  assert.deepEqual(failures, []);
  assert.equal(seen.at(-1)[1], '2');
  const st = await (await get(gw, '/admin/policies', { Authorization: 'Bearer adm' })).json();
  assert.equal(st.last_reload.ok, false);
  assert.match(st.last_reload.error, /tagger\.lua:\d+:/);
  assert.match(gw.stderr, /reload failed, keeping the current policies: .*tagger\.lua:\d+:/);
  const res = runBin(['-t', '-c', cfg], { env: baseEnv(dir, 1, { POLICIES_DIR: pol }) });
  assert.equal(res.status, 1);
  assert.match(res.stderr, /tagger\.lua:\d+:/);
  // a runtime error in new() is reported the same way
  fs.writeFileSync(path.join(pol, 'tagger.lua'), 'local _M = {}\nfunction _M.new()\n  error("bad conf")\nend\nreturn _M\n');
  await sleep(800);
  const st3 = await (await get(gw, '/admin/policies', { Authorization: 'Bearer adm' })).json();
  assert.match(st3.last_reload.error, /tagger\.lua:3: bad conf/);
  assert.equal((await get(gw, '/v1/models')).headers.get('x-policy-version'), '2');

  // gateway.lua replaced the way editors do (write a temp file, rename): reloaded too
  fs.writeFileSync(path.join(pol, 'tagger.lua'), policyWithVersion('3'));
  fs.writeFileSync(`${cfg}.new`, fs.readFileSync(cfg, 'utf8').replace('{ name = "tagger" },', ''));
  fs.renameSync(`${cfg}.new`, cfg);
  const t1 = Date.now();
  let gone = false;
  while (Date.now() - t1 < 2000) {
    if ((await get(gw, '/v1/models')).headers.get('x-policy-version') === null) { gone = true; break; }
    await sleep(50);
  }
  assert.ok(gone, 'the policy removed from gateway.lua is gone');
  const st4 = await (await get(gw, '/admin/policies', { Authorization: 'Bearer adm' })).json();
  assert.equal(st4.last_reload.ok, true);
  assert.ok(!st4.policies.includes('tagger'));
});

test('SIGHUP reloads; shared state (counters, bans) survives reloads', async (t) => {
  const gw = await startGateway({ env: { RATE_LIMIT_ENABLED: 'true', RATE_LIMIT: '5', ADMIN_KEY: 'adm' } });
  t.after(() => gw.stop());
  assert.equal((await get(gw, '/v1/models')).status, 200);
  assert.equal((await get(gw, '/v1/models')).status, 200);
  const v = (await (await get(gw, '/admin/policies', { Authorization: 'Bearer adm' })).json()).config_version;
  gw.proc.kill('SIGHUP');
  await sleep(500);
  const v2 = (await (await get(gw, '/admin/policies', { Authorization: 'Bearer adm' })).json()).config_version;
  assert.equal(v2, v + 1);
  assert.equal((await get(gw, '/v1/models')).status, 429, 'the counter survived the reload');
});

test('100 reloads under load: zero failed requests', async (t) => {
  const { mock, env } = await withMock(t);
  mock.on('gpt', [{ text: 'a' }, { text: 'b', delay: 5 }, { code: 204 }]);
  const gw = await startGateway({ env: { ...env, WORKERS: '2', ADMIN_KEY: 'adm' } });
  t.after(() => gw.stop());
  let stop = false;
  const failures = [];
  let done = 0;
  const worker = async () => {
    while (!stop) {
      try {
        const r = await get(gw, '/v1/models');
        await r.arrayBuffer();
        if (r.status !== 200) failures.push(r.status);
        const s = await post(gw, '/v1/chat/completions', { model: 'gpt-4', messages: USER, stream: true });
        const text = await s.text();
        if (s.status !== 200 || !text.endsWith('data: [DONE]\n\n')) failures.push(`stream ${s.status}`);
        done += 2;
      } catch (e) { failures.push(e.message); }
    }
  };
  const workers = [worker(), worker(), worker(), worker()];
  const v0 = (await (await get(gw, '/admin/policies', { Authorization: 'Bearer adm' })).json()).config_version;
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${gw.url}/admin/reload`, { method: 'POST', headers: { Authorization: 'Bearer adm' } });
    assert.equal(r.status, 200);
    await sleep(20);
  }
  await sleep(300);
  stop = true;
  await Promise.all(workers);
  const v1 = (await (await get(gw, '/admin/policies', { Authorization: 'Bearer adm' })).json()).config_version;
  assert.deepEqual(failures, []);
  assert.ok(done > 100, `${done} requests during the reloads`);
  assert.ok(v1 - v0 >= 50, `${v1 - v0} reloads recorded`);
});

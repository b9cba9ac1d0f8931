// pieces-gateway end-to-end: the core (issue: C server, Lua host, /, /ping, /v1/models).
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
const { ROOT, startGateway, raw, parseResponses, runBin, tmpDir, sleep, baseEnv, policyGateway } =
  require('./lib/gateway');

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'Authorization, Content-Type',
  'access-control-allow-credentials': 'true',
  'access-control-max-age': '3600',
};

const MODEL_IDS = ['chat-bison', 'gpt-4o-mini', 'gemini-1.5-pro', 'gpt-4o', 'codechat-bison',
  'claude-3-sonnet@20240229', 'gemini-pro', 'claude-3-opus@20240229', 'gpt-4-turbo',
  'gemini-1.5-flash', 'claude-3-5-sonnet@20240620', 'claude-3-haiku@20240307', 'gpt-3.5-turbo',
  'gpt-4'];

function assertCors(headers) {
  for (const [k, v] of Object.entries(CORS)) assert.equal(headers.get ? headers.get(k) : headers[k], v, k);
}

test('endpoints', async (t) => {
  const gw = await startGateway();
  t.after(() => gw.stop());

  await t.test('GET / is the health JSON with the four counters', async () => {
    const r = await fetch(`${gw.url}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /application\/json/);
    assertCors(r.headers);
    const j = await r.json();
    assert.equal(j.status, 'ok');
    for (const k of ['total_rpm', 'total_rps', 'api_rpm', 'api_rps']) {
      assert.equal(typeof j.metrics[k], 'number', k);
    }
    assert.ok(j.metrics.total_rpm >= 1);
  });

  await t.test('api counters count only paths under the prefix', async () => {
    const before = (await (await fetch(`${gw.url}/`)).json()).metrics;
    await fetch(`${gw.url}/v1/models`);
    await fetch(`${gw.url}/v1/models`);
    const after = (await (await fetch(`${gw.url}/`)).json()).metrics;
    assert.equal(after.api_rpm - before.api_rpm, 2);
    assert.equal(after.total_rpm - before.total_rpm, 3);
  });

  await t.test('GET /ping answers pong as text/plain', async () => {
    const r = await fetch(`${gw.url}/ping`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(await r.text(), 'pong');
    assertCors(r.headers);
  });

  await t.test('GET /v1/models lists the 14 models in catalog order', async () => {
    const r = await fetch(`${gw.url}/v1/models`);
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.equal(j.object, 'list');
    assert.deepEqual(j.data.map((m) => m.id), MODEL_IDS);
    const bison = j.data[0];
    assert.deepEqual(bison, {
      id: 'chat-bison', object: 'model', created: 1694793600, owned_by: 'google',
      details: { name: '(PaLM2) Chat Model', max_tokens: { total: 9000, input: 8000, output: 1000 } },
    });
    const g4 = j.data.find((m) => m.id === 'gpt-4');
    assert.deepEqual(g4.details.max_tokens, { total: 8000, input: 4100, output: 3900 });
    assert.equal(g4.owned_by, 'openai');
  });

  await t.test('HEAD works wherever GET does, without a body', async () => {
    for (const p of ['/', '/ping', '/v1/models']) {
      const { text } = await raw(gw.port, `HEAD ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const [res] = parseResponses(text.replace(/\r\n\r\n[\s\S]*$/, '\r\n\r\n'));
      assert.equal(res.status, 200, p);
      assert.ok(Number(res.headers['content-length']) > 0);
      assert.ok(text.endsWith('\r\n\r\n'), `no body after the head for ${p}`);
    }
  });

  await t.test('OPTIONS on any path is 204 with the CORS headers', async () => {
    for (const p of ['/', '/v1/chat/completions', '/nowhere']) {
      const r = await fetch(`${gw.url}${p}`, { method: 'OPTIONS' });
      assert.equal(r.status, 204);
      assertCors(r.headers);
      assert.equal(await r.text(), '');
    }
  });

  await t.test('unknown path is 404 route_not_found, wrong method 405', async () => {
    let r = await fetch(`${gw.url}/nowhere`);
    assert.equal(r.status, 404);
    assertCors(r.headers);
    assert.deepEqual(await r.json(), { error: { message: 'Requested path not found', type: 'error', code: 'route_not_found' } });
    r = await fetch(`${gw.url}/v1/unknown`);
    assert.equal(r.status, 404);
    r = await fetch(`${gw.url}/ping`, { method: 'POST' });
    assert.equal(r.status, 405);
    assert.deepEqual(await r.json(), { error: { message: 'Method not allowed', type: 'error', code: 'method_not_allowed' } });
    r = await fetch(`${gw.url}/v1/models`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 405);
    r = await fetch(`${gw.url}/ping`, { method: 'PUT' });
    assert.equal(r.status, 405);
    r = await fetch(`${gw.url}/v1/models`, { method: 'DELETE' });
    assert.equal(r.status, 405);
  });

  await t.test('keep-alive: several requests on one connection', async () => {
    const req = 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n';
    const { text } = await raw(gw.port, [req, req, req], { pauseMs: 50, idleMs: 300 });
    const res = parseResponses(text);
    assert.equal(res.length, 3);
    for (const x of res) assert.equal(x.body, 'pong');
  });

  await t.test('pipelined requests are answered in order', async () => {
    const data = 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n' +
      'POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi' +
      'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const { text, closedByPeer } = await raw(gw.port, data);
    const res = parseResponses(text);
    assert.deepEqual(res.map((x) => x.status), [200, 404, 405, 200]);
    assert.equal(res[0].body, 'pong');
    assert.equal(JSON.parse(res[3].body).data.length, 14);
    assert.ok(closedByPeer, 'Connection: close honoured');
  });

  await t.test('chunked request bodies are read', async () => {
    const data = 'POST /v1/models HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '4\r\nabcd\r\n0\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const res = parseResponses((await raw(gw.port, data)).text);
    assert.deepEqual(res.map((x) => x.status), [405, 200]);
  });

  await t.test('Expect: 100-continue gets an interim 100', async () => {
    const head = 'POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n';
    const { text } = await raw(gw.port, [head, 'abc'], { pauseMs: 200 });
    assert.ok(text.startsWith('HTTP/1.1 100 Continue\r\n\r\n'));
    assert.equal(parseResponses(text).pop().status, 405);
  });

  await t.test('HTTP/1.0 closes unless keep-alive is asked', async () => {
    const { closedByPeer, text } = await raw(gw.port, 'GET /ping HTTP/1.0\r\n\r\n');
    assert.ok(closedByPeer);
    assert.equal(parseResponses(text)[0].body, 'pong');
  });

  await t.test('malformed requests get 400 and the connection is closed', async () => {
    const cases = [
      'BREW / HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/7.1\r\nHost: x\r\n\r\n',
      'GET / FOO/1.1\r\nHost: x\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nabc\r\n0\r\n\r\n',
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nX-Nul: a\u0000b\r\n\r\n', 'latin1'),
      'GET /\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    ];
    for (const c of cases) {
      const { text, closedByPeer } = await raw(gw.port, c);
      const [res] = parseResponses(text);
      assert.ok(res, `a response for ${JSON.stringify(c.toString())}`);
      assert.equal(res.status, 400, JSON.stringify(c.toString()));
      assert.equal(JSON.parse(res.body).error.code, 'invalid_request');
      assert.ok(closedByPeer, 'closed after 400');
    }
    const r = await fetch(`${gw.url}/ping`);
    assert.equal(r.status, 200, 'still serving');
  });

  await t.test('the access log has method, URI, IP, status and duration', async () => {
    await fetch(`${gw.url}/ping?x=1`);
    await sleep(100);
    assert.match(gw.stdout, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d GET \/ping\?x=1 IP=127\.0\.0\.1 Status=200 Duration=[\d.]+(ns|µs|ms|s)$/m);
  });
});

test('limits', async (t) => {
  const gw = await startGateway({ env: {
    MAX_HEADER_SIZE: '1024', MAX_BODY_SIZE: '100', HEADER_TIMEOUT: '0.5',
    KEEPALIVE_TIMEOUT: '1', MAX_CONNECTIONS: '4',
  } });
  t.after(() => gw.stop());

  await t.test('request head too large: 431', async () => {
    const { text, closedByPeer } = await raw(gw.port, `GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`);
    assert.equal(parseResponses(text)[0].status, 431);
    assert.ok(closedByPeer);
  });

  await t.test('body over max_body_size: 413 (Content-Length and chunked)', async () => {
    let { text } = await raw(gw.port, 'POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n');
    assert.equal(parseResponses(text)[0].status, 413);
    ({ text } = await raw(gw.port, `POST /ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n${'x'.repeat(101)}\r\n0\r\n\r\n`));
    assert.equal(parseResponses(text)[0].status, 413);
    const r = await fetch(`${gw.url}/ping`, { method: 'POST', body: 'x'.repeat(100) });
    assert.equal(r.status, 405, 'exactly max_body_size is accepted');
    // a client still uploading gets the 413, not a connection reset (lingering close)
    const big = await fetch(`${gw.url}/ping`, { method: 'POST', body: 'x'.repeat(4_000_000) });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).error.code, 'body_too_large');
  });

  await t.test('slow request head: 408 and close', async () => {
    const t0 = Date.now();
    const { text, closedByPeer } = await raw(gw.port, ['GET /ping HTTP/1.1\r\n', 'Host: x\r\n'], { pauseMs: 200, idleMs: 3000 });
    assert.equal(parseResponses(text)[0].status, 408);
    assert.ok(closedByPeer);
    assert.ok(Date.now() - t0 < 2500);
  });

  await t.test('idle keep-alive connections are closed', async () => {
    const t0 = Date.now();
    const { text, closedByPeer } = await raw(gw.port, 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 4000 });
    assert.equal(parseResponses(text)[0].status, 200);
    assert.ok(closedByPeer);
    assert.ok(Date.now() - t0 < 3000);
  });

  await t.test('beyond max connections new ones are closed, existing ones unharmed', async () => {
    const socks = [];
    for (let i = 0; i < 4; i++) {
      const s = net.connect(gw.port, '127.0.0.1');
      await new Promise((r) => s.on('connect', r));
      socks.push(s);
    }
    await sleep(100);
    const extra = await raw(gw.port, 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 1000 });
    assert.equal(extra.text, '', 'the fifth connection is refused');
    const s = socks[0];
    const got = new Promise((r) => s.once('data', (d) => r(d.toString())));
    s.write('GET /ping HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(await got, /pong$/);
    for (const x of socks) x.destroy();
  });
});

test('a policy that raises gets 500 and the worker keeps serving', async (t) => {
  const gw = await startGateway(policyGateway('boom', [
    'if r.req.path == "/boom" then',
    '    local t = nil',
    '    return t.field',
    'end']));
  t.after(() => gw.stop());
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${gw.url}/boom`);
    assert.equal(r.status, 500);
    assert.equal((await r.json()).error.code, 'internal_error');
    const ok = await fetch(`${gw.url}/v1/models`);
    assert.equal(ok.status, 200);
  }
  await sleep(100);
  assert.match(gw.stderr, /policy 'boom' failed in phase access .*boom\.lua:3\): .*boom\.lua:6: attempt to index/);
});

test('-t validates the config and the policies', async (t) => {
  let r = runBin(['-t', '-c', path.join(ROOT, 'gateway.lua')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /test is successful/);

  const dir = tmpDir();
  const pol = path.join(dir, 'policies');
  fs.mkdirSync(pol);
  fs.writeFileSync(path.join(pol, 'models.lua'), 'local _M = {}\nfunction _M.new(\n  return 1\nend\nreturn _M\n');
  const env = baseEnv(dir, 8787, { POLICIES_DIR: pol });
  r = runBin(['-t', '-c', path.join(ROOT, 'gateway.lua')], { env });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /policies\/models\.lua:3: /, r.stderr);

  const cfg = path.join(dir, 'bad.lua');
  fs.writeFileSync(cfg, 'return { listen = { port = 70000 } }\n');
  r = runBin(['-t', '-c', cfg], { env });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /listen\.port must be between 1 and 65535 \(got 70000\)/);

  fs.writeFileSync(cfg, 'return { limitz = {} }\n');
  r = runBin(['-t', '-c', cfg], { env });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /limitz is not a known setting/);

  fs.writeFileSync(cfg, 'return {\n  workers = 1,\n  oops(\n}\n');
  r = runBin(['-t', '-c', cfg], { env });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.lua:4: /);

  r = runBin(['--version']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^pieces-gateway \d+\.\d+\.\d+ \(built \d{4}-\d\d-\d\dT/);
});

test('environment overrides and .env', async (t) => {
  await t.test('API_PREFIX is normalised (leading / added, trailing / removed)', async () => {
    const gw = await startGateway({ env: { API_PREFIX: 'api/v2/' } });
    try {
      assert.equal((await fetch(`${gw.url}/api/v2/models`)).status, 200);
      assert.equal((await fetch(`${gw.url}/v1/models`)).status, 404);
      assert.match(gw.stderr, /APIPrefix should start with \/, auto fixed to: \/api\/v2\//);
      assert.match(gw.stderr, /APIPrefix should not end with \/, auto fixed to: \/api\/v2/);
    } finally { await gw.stop(); }
  });

  await t.test('an empty prefix serves /models', async () => {
    const gw = await startGateway({ env: { API_PREFIX: '/' } });
    try {
      assert.equal((await fetch(`${gw.url}/models`)).status, 200);
      assert.equal((await fetch(`${gw.url}/ping`)).status, 200);
    } finally { await gw.stop(); }
  });

  await t.test('.env is read and the real environment wins; bad values warn', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, '.env'), 'API_PREFIX=/fromfile\nMAX_BODY_SIZE=10\nWORKERS=2\n');
    const gw = await startGateway({ dir, env: { WORKERS: '1', MAX_BODY_SIZE: '12abc' } });
    try {
      assert.equal((await fetch(`${gw.url}/fromfile/models`)).status, 200);
      assert.match(gw.log, /Server starting on port \d+ \(1 worker\)/);
      assert.match(gw.stderr, /invalid integer value for MAX_BODY_SIZE: '12abc', using default 8388608/);
      const r = await fetch(`${gw.url}/ping`, { method: 'POST', body: 'x'.repeat(1000) });
      assert.equal(r.status, 405, 'the default body limit applies, not the .env one');
    } finally { await gw.stop(); }
  });

  await t.test('LOG_FILE gets every line appended, flushed per line', async () => {
    const dir = tmpDir();
    const logFile = path.join(dir, 'gw.log');
    fs.writeFileSync(logFile, 'previous line\n');
    const gw = await startGateway({ dir, env: { LOG_FILE: logFile } });
    await fetch(`${gw.url}/ping`);
    await sleep(100);
    const text = fs.readFileSync(logFile, 'utf8');
    await gw.stop();
    assert.match(text, /^previous line\n/);
    assert.match(text, /Starting pieces-gateway Version: /);
    assert.match(text, /GET \/ping IP=127\.0\.0\.1 Status=200/);
  });
});

test('a vocabulary that does not match SHA256SUMS: the gateway refuses to start, naming it', async () => {
  const dir = tmpDir();
  const assets = path.join(dir, 'assets');
  fs.cpSync(path.join(ROOT, 'assets'), assets, { recursive: true });
  const f = path.join(assets, 'o200k_base.tiktoken');
  fs.chmodSync(f, 0o644);
  fs.appendFileSync(f, 'AAAA 999999\n');
  const gw = new (require('./lib/gateway').Gateway)({ dir, env: { ASSETS_DIR: assets } });
  await assert.rejects(gw.start(), /o200k_base\.tiktoken/);
  const res = await gw.exited;
  assert.equal(res.code, 1);
  assert.match(gw.stderr, /Failed to initialize tokenizers: .*o200k_base\.tiktoken/);
});

test('SIGTERM lets an in-flight request finish, then exits 0', async () => {
  const gw = await startGateway({ env: { SHUTDOWN_GRACE: '5' } });
  const sock = net.connect(gw.port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  let got = '';
  sock.on('data', (d) => { got += d; });
  sock.write('POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello');
  await sleep(150);
  gw.proc.kill('SIGTERM');
  await sleep(300);
  assert.equal(gw.proc.exitCode, null, 'still running while a request is in flight');
  sock.write('world');
  const res = await gw.exited;
  assert.equal(res.code, 0);
  const [r] = parseResponses(got);
  assert.equal(r.status, 405);
  assert.equal(r.headers.connection, 'close');
  // the listener is gone
  await assert.rejects(fetch(`${gw.url}/ping`));
});

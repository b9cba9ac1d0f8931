// pieces-gateway end-to-end: the OpenAI-compatible HTTP backend, fallback and circuit breakers.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
//
// The built gateway between the official openai client and the Node mock of
// spec/e2e/mock/openai.js (and the grpc-js Pieces mock for fallback), configured only through
// the documented environment variables.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const OpenAI = require('openai');
const { startOpenAIMock, USAGE } = require('./mock/openai');
const { startMock } = require('./mock/mock');
const { makeCerts } = require('./mock/certs');
const { startGateway, tmpDir, sleep, freePort, GO_AWAY, openStream } = require('./lib/gateway');

const KEY = 'sk-upstream-secret-7f3a9c1e5b';
const USER = [{ role: 'user', content: 'hi' }];
const MODELS = 'gpt-4o=up-gpt-4o,tools,no-usage,length,content-filter,refusal,n2,split,'
  + 'status-400,status-401,status-404,status-429,status-500,status-503,malformed,reset,stall,'
  + 'slow-headers,error-mid,big';

async function setup(t, { env = {}, mock = {}, prefix = '/api/v1' } = {}) {
  const dir = tmpDir();
  const oai = await startOpenAIMock(mock);
  const dead = await freePort(); // no Pieces upstream unless a test gives one
  const gw = await startGateway({ dir, env: {
    GPT_GRPC_ADDR: `http://127.0.0.1:${dead}`, VERTEX_GRPC_ADDR: `http://127.0.0.1:${dead}`,
    MIN_POOL_SIZE: '1', MAX_RETRIES: '1', OPENAI_BASE_URL: `${oai.url}${prefix}`,
    OPENAI_API_KEY: KEY, OPENAI_MODELS: MODELS, ...env,
  } });
  t.after(async () => { await gw.stop(); await oai.close(); });
  const client = new OpenAI({ apiKey: 'client-key', baseURL: `${gw.url}/v1`, maxRetries: 0,
    timeout: 30000 });
  return { gw, oai, client, dir };
}

function post(gw, body) {
  return fetch(`${gw.url}/v1/chat/completions`, { method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

function sseData(text) {
  return text.trim().split('\n\n').map((e) => e.replace(/^data: /, ''));
}

test('OpenAI-compatible backend over HTTP/1.1 with a path prefix', async (t) => {
  const { gw, oai, client } = await setup(t);

  await t.test('non-stream: content, upstream usage, model mapped and echoed, key sent', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: USER });
    assert.equal(r.choices[0].message.content, 'Hello, world');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.model, 'gpt-4o');
    assert.match(r.id, /^chatcmpl-[0-9a-f]{28}$/);
    assert.deepEqual(r.usage, USAGE);
    const rec = oai.requests.at(-1);
    assert.equal(rec.path, '/api/v1/chat/completions');
    assert.equal(rec.headers.authorization, `Bearer ${KEY}`);
    assert.equal(rec.body.model, 'up-gpt-4o');
    assert.equal(rec.body.stream, false);
    assert.equal(rec.body.stream_options, undefined);
    assert.equal(rec.http, '1.1');
  });

  await t.test('stream: deltas, gateway id, upstream usage asked for and used', async () => {
    const chunks = await collect(await client.chat.completions.create({ model: 'gpt-4o',
      messages: USER, stream: true, stream_options: { include_usage: true } }));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content || '').join(''), 'Hello, world');
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
    assert.match(chunks[0].id, /^chatcmpl-[0-9a-f]{28}$/);
    assert.ok(chunks.every((c) => c.model === 'gpt-4o'));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
    assert.deepEqual(chunks.at(-1).usage, USAGE);
    const rec = oai.requests.at(-1);
    assert.equal(rec.body.stream, true);
    assert.deepEqual(rec.body.stream_options, { include_usage: true });
  });

  await t.test('usage is computed when the upstream sends none (stream and not)', async () => {
    const r = await client.chat.completions.create({ model: 'no-usage', messages: USER });
    // o200k: "Hello, world" = 3; prompt 3 + (3 + "hi" 1 + "user" 1) = 8
    assert.deepEqual(r.usage, { prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 });
    const chunks = await collect(await client.chat.completions.create({ model: 'no-usage',
      messages: USER, stream: true }));
    assert.deepEqual(chunks.at(-1).usage, r.usage);
    assert.equal(oai.requests.at(-1).body.stream_options.include_usage, true);
    await sleep(50); // the access line is written when the response completed
    assert.match(gw.stdout, /POST \/v1\/chat\/completions model=no-usage .* Backend=openai Usage=tokenizer$/m);
    assert.match(gw.stdout, /model=gpt-4o .* Backend=openai Usage=upstream$/m);
  });

  await t.test('tool calls: streamed deltas reassemble, and the non-stream message', async () => {
    const chunks = await collect(await client.chat.completions.create({ model: 'tools',
      messages: USER, stream: true, tools: [{ type: 'function', function: { name: 'get_weather',
        parameters: { type: 'object', properties: { city: { type: 'string' } } } } }] }));
    const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls || []);
    assert.equal(calls[0].id, 'call_mock1');
    assert.equal(calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(calls.map((c) => c.function.arguments).join('')),
      { city: 'Paris' });
    assert.equal(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason,
      'tool_calls');
    const r = await client.chat.completions.create({ model: 'tools', messages: USER });
    assert.equal(r.choices[0].message.content, null);
    assert.deepEqual(r.choices[0].message.tool_calls, [{ id: 'call_mock1', type: 'function',
      function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }]);
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
  });

  await t.test('finish reasons, refusal, n = 2, split SSE', async () => {
    for (const [model, reason] of [['length', 'length'], ['content-filter', 'content_filter']]) {
      const r = await client.chat.completions.create({ model, messages: USER });
      assert.equal(r.choices[0].finish_reason, reason);
      const chunks = await collect(await client.chat.completions.create({ model, messages: USER,
        stream: true }));
      assert.equal(chunks.at(-1).choices[0].finish_reason, reason);
    }
    const r = await client.chat.completions.create({ model: 'refusal', messages: USER });
    assert.equal(r.choices[0].message.refusal, "I can't help with that.");
    const chunks = await collect(await client.chat.completions.create({ model: 'refusal',
      messages: USER, stream: true }));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.refusal || '').join(''),
      "I can't help with that.");
    const two = await client.chat.completions.create({ model: 'n2', messages: USER, n: 2 });
    assert.deepEqual(two.choices.map((c) => [c.message.content, c.finish_reason]),
      [['One', 'stop'], ['Two', 'length']]);
    const split = await collect(await client.chat.completions.create({ model: 'split',
      messages: USER, stream: true }));
    assert.equal(split.map((c) => c.choices[0]?.delta?.content || '').join(''), 'Hello, world');
  });

  await t.test('parameters and unknown fields pass through byte for byte', async () => {
    const body = '{"\\u006dodel":"gpt-4-sneaky","messages":[{"role":"user","content":"hi"}],'
      + '"max_tokens":7,"max_completion_tokens":8,"stop":["x"],"temperature":0.50,"top_p":1e0,'
      + '"presence_penalty":0.1,"frequency_penalty":-0.1,"seed":42,'
      + '"response_format":{"type":"json_object"},"tools":[],"tool_choice":"auto",'
      + '"parallel_tool_calls":false,"user":"u1","logit_bias":{"50256":-100},"n":1,'
      + '"vendor_extra":{"deep":[1,2.50,null]},"stream_options":{"include_usage":true},'
      + '"model":"gpt-4o"}';
    const r = await post(gw, body);
    assert.equal(r.status, 200);
    const raw = oai.requests.at(-1).raw;
    for (const part of ['"max_tokens":7', '"max_completion_tokens":8', '"stop":["x"]',
      '"temperature":0.50', '"top_p":1e0', '"presence_penalty":0.1',
      '"frequency_penalty":-0.1', '"seed":42', '"response_format":{"type":"json_object"}',
      '"tools":[]', '"tool_choice":"auto"', '"parallel_tool_calls":false', '"user":"u1"',
      '"logit_bias":{"50256":-100}', '"n":1', '"vendor_extra":{"deep":[1,2.50,null]}']) {
      assert.ok(raw.includes(part), `${part} in ${raw}`);
    }
    const sent = JSON.parse(raw);
    assert.equal(sent.model, 'up-gpt-4o', 'an escaped duplicate key cannot pick the model');
    assert.equal(raw.match(/odel"/g).length, 1);
    assert.equal(sent.stream, false);
    assert.equal(sent.stream_options, undefined);
  });

  await t.test('models list: Pieces catalog first, then the backend\'s, once each', async () => {
    const list = await (await fetch(`${gw.url}/v1/models`)).json();
    const ids = list.data.map((m) => m.id);
    assert.equal(ids[0], 'chat-bison');
    assert.equal(ids.filter((i) => i === 'gpt-4o').length, 1);
    assert.deepEqual(ids.slice(14, 17), ['tools', 'no-usage', 'length']);
    assert.equal(ids.length, 14 + MODELS.split(',').length - 1);
  });

  await t.test('the upstream key is in no log line, error or status answer', async () => {
    const home = await (await fetch(`${gw.url}/`)).text();
    const admin = await (await fetch(`${gw.url}/admin/backends`, {
      headers: { authorization: 'Bearer admin-test-key' } })).text();
    assert.match(home, /"openai":\{"type":"openai","pool":\{"origin":"http:/);
    assert.match(admin, /"breakers"/);
    const e = await (await post(gw, { model: 'status-401', messages: USER })).text();
    for (const s of [home, admin, e, gw.log]) assert.ok(!s.includes(KEY));
    assert.ok(!gw.log.includes(KEY.slice(3)));
  });
});

test('upstream faults through the OpenAI backend', async (t) => {
  // (every failure here would also count for the breaker: keep it out of the way)
  const { gw, oai } = await setup(t, { env: { STREAM_TIMEOUT: '2', TIMEOUT: '1',
    MAX_RETRIES: '2', BREAKER_FAILURES: '1000' } });

  await t.test('4xx pass through as upstream_error, 429 keeps Retry-After, 5xx -> 502', async () => {
    for (const st of [400, 401, 404]) {
      const r = await post(gw, { model: `status-${st}`, messages: USER });
      assert.equal(r.status, st);
      const e = (await r.json()).error;
      assert.equal(e.code, 'upstream_error');
      assert.match(e.message, new RegExp(`${st}.*mock error ${st}`));
    }
    const r = await post(gw, { model: 'status-429', messages: USER });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '7');
    const before = oai.requests.length;
    const t0 = Date.now();
    const f = await post(gw, { model: 'status-503', messages: USER, stream: true });
    assert.equal(f.status, 502);
    assert.equal((await f.json()).error.code, 'bad_gateway');
    assert.equal(oai.requests.length - before, 2, '503 is retried (MAX_RETRIES=2)');
    assert.ok(Date.now() - t0 >= 900, 'after the 1 s back-off');
    assert.equal((await post(gw, { model: 'status-500', messages: USER })).status, 502);
  });

  await t.test('malformed SSE, a reset and an error object mid-stream: one SSE error', async () => {
    for (const model of ['malformed', 'reset', 'error-mid']) {
      const r = await post(gw, { model, messages: USER, stream: true });
      assert.equal(r.status, 200);
      const events = sseData(await r.text());
      assert.ok(!events.includes('[DONE]'), model);
      const last = JSON.parse(events.at(-1));
      assert.equal(last.error.code, 'bad_gateway', model);
      assert.ok(!events.slice(0, -1).some((e) => JSON.parse(e).choices[0].finish_reason), model);
    }
    const r = await post(gw, { model: 'reset', messages: USER });
    assert.equal(r.status, 503, 'a reset before the answer: unreachable');
    assert.equal((await post(gw, { model: 'malformed', messages: USER })).status, 502);
  });

  await t.test('a stall: TIMEOUT (non-stream) and STREAM_TIMEOUT fire', async () => {
    const r = await post(gw, { model: 'stall', messages: USER });
    assert.equal(r.status, 504);
    assert.equal((await r.json()).error.code, 'gateway_timeout');
    const t0 = Date.now();
    const s = await post(gw, { model: 'stall', messages: USER, stream: true });
    const events = sseData(await s.text());
    assert.equal(JSON.parse(events[0]).choices[0].delta.content, 'Hello', 'text before the stall');
    assert.equal(JSON.parse(events.at(-1)).error.code, 'stream_timeout');
    assert.ok(Date.now() - t0 >= 1900);
  });

  await t.test('slow headers within TIMEOUT are fine', async () => {
    const r = await post(gw, { model: 'slow-headers', messages: USER });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).choices[0].message.content, 'Hello, world');
  });

  await t.test('a client that goes away cancels the upstream request at once', async () => {
    await abortedStreams(gw, oai, ABORT_ROUNDS);
  });
});

// ABORT_ROUNDS streams of the 'stall' model (text, then nothing), each read until the client saw
// its text, then the client goes away (GO_AWAY kinds in turn). Each time the mock must see that
// very request close long before STREAM_TIMEOUT could close it (so the gateway's own timeout
// cannot stand in for the cancel): within 100 ms of a raw socket's FIN or RST (the gateway
// alone), within 500 ms of fetch's abort (undici's abort work included). No request is left in
// the backend pool afterwards.
const ABORT_ROUNDS = 15;
async function abortedStreams(gw, oai, rounds) {
  const late = [];
  for (let i = 0; i < rounds; i++) {
    const how = GO_AWAY[i % GO_AWAY.length];
    const s = await openStream(gw, { model: 'stall', messages: USER, stream: true }, how);
    assert.equal(s.status, 200, `round ${i} (${how})`);
    assert.match(s.text, /"content":"Hello"/, `round ${i} (${how}): text before the stall`);
    const id = oai.requests.at(-1).id;
    assert.ok(!oai.closes.some((c) => c.id === id), `round ${i}: still open before going away`);
    const t0 = Date.now();
    s.leave();
    await oai.waitFor(() => oai.closes.some((c) => c.id === id), 1500);
    const ms = oai.closes.find((c) => c.id === id).t - t0;
    if (ms >= (how === 'fetch' ? 500 : 100)) late.push(`round ${i} (${how}): ${ms} ms`);
  }
  assert.deepEqual(late, [], 'the mock saw every close in time');
  const home = await (await fetch(`${gw.url}/`)).json();
  assert.equal(home.backends.openai.pool.requests, 0, 'no upstream request left');
}

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

test('a slow reader pauses the upstream: RSS flat over a 50 MB stream', async (t) => {
  const { gw, oai } = await setup(t);
  const sock = net.connect(gw.port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  const body = JSON.stringify({ model: 'big', messages: USER, stream: true });
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`
    + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  sock.pause();
  await oai.waitFor(() => oai.requests.length > 0 && oai.progress[oai.requests.at(-1).id] > 0);
  await sleep(800);
  const id = oai.requests.at(-1).id;
  const sent1 = oai.progress[id];
  const rss1 = rssKb(gw.proc.pid);
  await sleep(700);
  assert.ok(oai.progress[id] - sent1 < 1024 * 1024,
    `the mock is held back (${sent1} -> ${oai.progress[id]})`);
  assert.ok(oai.progress[id] < 16 * 1024 * 1024, `paused after ${oai.progress[id]} bytes`);
  let got = 0;
  let maxRss = rss1;
  sock.on('data', (d) => { got += d.length; });
  const timer = setInterval(() => { maxRss = Math.max(maxRss, rssKb(gw.proc.pid)); }, 50);
  sock.resume();
  await new Promise((r) => { sock.on('end', r); sock.on('close', r); setTimeout(r, 60000); });
  clearInterval(timer);
  assert.ok(got > 50 * 1024 * 1024, `read ${got} bytes`);
  assert.ok(maxRss - rss1 < 20 * 1024, `RSS grew ${maxRss - rss1} KB over 50 MB`);
});

test('fallback: Pieces down -> the OpenAI backend, then the breaker', async (t) => {
  const pieces = await startMock({});
  const { gw, oai, client } = await setup(t, { env: {
    GPT_GRPC_ADDR: `http://127.0.0.1:${pieces.port}`,
    VERTEX_GRPC_ADDR: `http://127.0.0.1:${pieces.port}`,
    BREAKER_FAILURES: '2', BREAKER_COOLDOWN: '1.5',
  } });
  t.after(() => pieces.close());

  await t.test('the served model comes from Pieces while it works', async () => {
    const n = oai.requests.length;
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: USER });
    assert.equal(r.id, 'chatcmpl-mock');
    assert.equal(oai.requests.length, n);
  });

  await t.test('Pieces failing: the client sees no error; the breaker opens after 2', async () => {
    pieces.on('gpt', (call, ctx) => ctx.error(14, 'down'));
    for (let i = 0; i < 2; i++) {
      const r = await client.chat.completions.create({ model: 'gpt-4o', messages: USER });
      assert.deepEqual(r.usage, USAGE, 'answered by the OpenAI backend');
    }
    const home = await (await fetch(`${gw.url}/`)).json();
    assert.equal(home.breakers.pieces.state, 'open');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(metrics, /^gateway_upstream_attempts_total\{backend="pieces",result="fallback"\} 2$/m);
    assert.match(metrics, /^gateway_upstream_attempts_total\{backend="openai",result="ok"\} 2$/m);
    assert.match(metrics, /^gateway_upstream_breaker_open\{backend="pieces"\} 1$/m);
    const seen = pieces.requests.length;
    const t0 = Date.now();
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: USER,
      stream: true });
    await collect(r);
    assert.equal(pieces.requests.length, seen, 'an open breaker skips Pieces');
    assert.ok(Date.now() - t0 < 1000);
    const only = await post(gw, { model: 'gemini-pro', messages: USER });
    assert.equal(only.status, 503, 'a model only Pieces serves: 503 while open');
    assert.ok(Number(only.headers.get('retry-after')) >= 1);
  });

  await t.test('after the cool-down one probe closes it again', async () => {
    pieces.on('gpt', null);
    await sleep(1600);
    const seen = pieces.requests.length;
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: USER });
    assert.equal(r.id, 'chatcmpl-mock');
    assert.equal(pieces.requests.length, seen + 1);
    const home = await (await fetch(`${gw.url}/`)).json();
    assert.equal(home.breakers.pieces.state, 'closed');
  });
});

test('a backend that accepts but never answers costs the connect timeout only', async (t) => {
  const held = new Set();
  const hole = net.createServer((s) => { held.add(s); s.on('error', () => {}); });
  await new Promise((r) => hole.listen(0, '127.0.0.1', r));
  t.after(() => { for (const s of held) s.destroy(); hole.close(); });
  const addr = `https://127.0.0.1:${hole.address().port}`;
  const { client } = await setup(t, { env: { GPT_GRPC_ADDR: addr, VERTEX_GRPC_ADDR: addr,
    UPSTREAM_CONNECT_TIMEOUT: '0.5', UPSTREAM_INSECURE: 'true' } });
  const t0 = Date.now();
  const r = await client.chat.completions.create({ model: 'gpt-4o', messages: USER });
  assert.deepEqual(r.usage, USAGE);
  const dt = Date.now() - t0;
  // UPSTREAM_CONNECT_TIMEOUT (0.5 s), far from TIMEOUT (30 s); generous for a loaded machine
  assert.ok(dt >= 450 && dt < 10000, `fell back after ${dt} ms`);
});

test('TLS to the OpenAI backend: h2 by ALPN, CA file, wrong CA, insecure', async (t) => {
  const dir = tmpDir();
  const certs = makeCerts(path.join(dir, 'certs'));
  const tls = { cert: certs.cert, key: certs.key };

  await t.test('right CA: HTTP/2 (ALPN h2)', async (tt) => {
    const { oai, client } = await setup(tt, { mock: { tls }, env: { UPSTREAM_CA_FILE: certs.ca } });
    const chunks = await collect(await client.chat.completions.create({ model: 'gpt-4o',
      messages: USER, stream: true }));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content || '').join(''), 'Hello, world');
    assert.equal(oai.requests.at(-1).http, '2.0');
    const r = await client.chat.completions.create({ model: 'tools', messages: USER });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
  });

  await t.test('HTTP/2: a client that goes away resets the upstream stream at once', async (tt) => {
    const { gw, oai } = await setup(tt, { mock: { tls }, env: { UPSTREAM_CA_FILE: certs.ca } });
    await abortedStreams(gw, oai, ABORT_ROUNDS);
    assert.equal(oai.requests.at(-1).http, '2.0');
  });

  await t.test('an HTTP/1.1-only TLS server', async (tt) => {
    const { oai, client } = await setup(tt, { mock: { tls, h2: false },
      env: { UPSTREAM_CA_FILE: certs.ca } });
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: USER });
    assert.equal(r.choices[0].message.content, 'Hello, world');
    assert.equal(oai.requests.at(-1).http, '1.1');
  });

  await t.test('wrong CA: refused with 503, the mock never sees a request', async (tt) => {
    const { gw, oai } = await setup(tt, { mock: { tls }, env: { UPSTREAM_CA_FILE: certs.otherCa } });
    const r = await post(gw, { model: 'gpt-4o', messages: USER });
    assert.equal(r.status, 503);
    assert.match((await r.json()).error.message, /certificate/);
    assert.equal(oai.requests.length, 0);
  });

  await t.test('insecure works and says so', async (tt) => {
    const { gw, client } = await setup(tt, { mock: { tls },
      env: { UPSTREAM_CA_FILE: certs.otherCa, UPSTREAM_INSECURE: 'true' } });
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: USER });
    assert.equal(r.choices[0].message.content, 'Hello, world');
    assert.match(gw.log, /NOT verified/);
  });
});

test('no new settings: Pieces only, as before', async (t) => {
  const dead = await freePort();
  const gw = await startGateway({ env: { GPT_GRPC_ADDR: `http://127.0.0.1:${dead}`,
    VERTEX_GRPC_ADDR: `http://127.0.0.1:${dead}`, MIN_POOL_SIZE: '1' } });
  t.after(() => gw.stop());
  const list = await (await fetch(`${gw.url}/v1/models`)).json();
  assert.equal(list.data.length, 14);
  const home = await (await fetch(`${gw.url}/`)).json();
  assert.deepEqual(Object.keys(home.backends), ['pieces']);
  assert.ok(home.upstream.gpt && home.upstream.vertex);
});

// pieces-gateway end-to-end: how an answer ends when the upstream breaks (truncation rule),
// and upstreams that do not speak HTTP/2 at all. Uses the frame-level fault upstream
// (mock/h2fault.js), not the grpc-js mock.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
//
// The rule (src/chat.c, top of file): a stream is complete with its 204 end frame or with
// grpc-status 0; a non-stream answer only with grpc-status 0. Anything else once the answer
// started is a truncation: one SSE error event (no finish_reason "stop", no usage, no [DONE]),
// or an error status instead of the partial text.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startFault, startHttp1, startGarbage, http2Constants: H2 } = require('./mock/h2fault');
const { startGateway } = require('./lib/gateway');

const USER = [{ role: 'user', content: 'hi' }];

async function gatewayFor(t, address, env = {}) {
  const gw = await startGateway({ env: {
    GPT_GRPC_ADDR: address, VERTEX_GRPC_ADDR: address, MIN_POOL_SIZE: '1', ...env,
  } });
  t.after(() => gw.stop());
  return gw;
}

async function faultSetup(t) {
  const up = await startFault();
  t.after(() => up.close());
  return { up, gw: await gatewayFor(t, up.address) };
}

const SERVICES = [['gpt', 'gpt-4'], ['vertex', 'gemini-1.5-pro']];

function post(gw, body) {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
}

// The data payloads of an SSE body, checking the framing.
function sseEvents(text) {
  assert.ok(text.endsWith('\n\n'), `events end with a blank line: ${JSON.stringify(text.slice(-80))}`);
  return text.slice(0, -2).split('\n\n').map((e) => {
    assert.ok(e.startsWith('data: '), `event framing: ${e.slice(0, 60)}`);
    return e.slice(6);
  });
}

async function streamEvents(gw, model) {
  const r = await post(gw, { model, messages: USER, stream: true });
  assert.equal(r.status, 200, 'the stream had started');
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  return sseEvents(await r.text());
}

// A truncated stream, as the client sees it: the content so far, then exactly one error event
// in OpenAI's shape, and nothing that looks like a successful end.
function assertTruncated(events, { text, code = 'bad_gateway', match }) {
  assert.ok(!events.includes('[DONE]'), 'no [DONE] after a truncation');
  const parsed = events.map((e) => JSON.parse(e));
  const errors = parsed.filter((e) => e.error);
  assert.equal(errors.length, 1, `exactly one error event: ${events.join(' | ')}`);
  assert.ok(parsed.at(-1).error, 'the error event is the last one');
  assert.deepEqual(Object.keys(errors[0].error).sort(), ['code', 'message', 'type']);
  assert.equal(errors[0].error.code, code);
  if (match) assert.match(errors[0].error.message, match);
  const chunks = parsed.slice(0, -1);
  for (const c of chunks) {
    assert.equal(c.object, 'chat.completion.chunk');
    assert.notEqual(c.choices[0]?.finish_reason, 'stop', 'no finish_reason "stop"');
    assert.equal(c.usage, undefined, 'no usage');
  }
  assert.equal(chunks.map((c) => c.choices[0].delta.content || '').join(''), text);
}

function assertComplete(events, text) {
  assert.equal(events.at(-1), '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  assert.ok(chunks.every((c) => !c.error), 'no error event');
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, [{ index: 0, delta: {}, finish_reason: 'stop' }]);
  assert.ok(last.usage.completion_tokens >= 1);
  assert.equal(chunks.map((c) => c.choices[0].delta.content || '').join(''), text);
  return chunks;
}

const INTERNAL = H2.NGHTTP2_INTERNAL_ERROR;
const msg = (text, extra = {}) => ({ msg: { text, ...extra } });

// Every way an upstream can cut an answer once it has sent some of it.
const CUTS = [
  { name: 'RST_STREAM INTERNAL_ERROR', steps: [{ delay: 20 }, { rst: INTERNAL }],
    match: /RST_STREAM.*INTERNAL_ERROR/ },
  { name: 'RST_STREAM NO_ERROR without trailers', steps: [{ delay: 20 }, { rst: H2.NGHTTP2_NO_ERROR }],
    match: /without grpc-status/ },
  { name: 'GOAWAY INTERNAL_ERROR and a closed connection', steps: [{ goaway: INTERNAL }],
    match: /closed by peer.*GOAWAY \(INTERNAL_ERROR\)/ },
  { name: 'TCP EOF', steps: [{ tcp: 'eof' }], match: /closed by peer \(EOF\)/ },
  // (Node's resetAndDestroy under an http2 session now and then sends a FIN instead)
  { name: 'TCP reset', steps: [{ tcp: 'reset' }], match: /reset by peer|closed by peer/ },
  { name: 'end inside a gRPC message, then grpc-status 0', steps: [{ half: { text: 'lost' } }, { end: {} }],
    match: /inside a gRPC message/ },
  { name: 'end inside a gRPC message, then TCP EOF', steps: [{ half: { text: 'lost' } }, { tcp: 'eof' }] },
  { name: 'grpc-status 13 naming RST_STREAM (a proxy translating the reset)',
    steps: [{ end: { status: 13, message: 'stream terminated by RST_STREAM with error code: INTERNAL_ERROR' } }],
    match: /gRPC status 13/ },
];

test('a stream cut after its first bytes ends with one SSE error event', async (t) => {
  const { up, gw } = await faultSetup(t);

  for (const [service, model] of SERVICES) {
    for (const cut of CUTS) {
      await t.test(`${service}: ${cut.name}`, async () => {
        await up.play([msg('Hello'), msg(', wor'), ...cut.steps]);
        const before = up.calls.length;
        assertTruncated(await streamEvents(gw, model), { text: 'Hello, wor', match: cut.match });
        assert.equal(up.calls.length - before, 1, 'a started stream is never retried');
      });
    }
  }

  await t.test('Vertex: an RST_STREAM after text but without the 204 frame is a truncation', async () => {
    await up.play([msg('partial'), { delay: 20 }, { rst: INTERNAL }]);
    assertTruncated(await streamEvents(gw, 'claude-3-haiku@20240307'), { text: 'partial' });
  });

  await t.test('the gateway still serves after every cut', async () => {
    await up.play([msg('fine'), { msg: { code: 204 } }]);
    assertComplete(await streamEvents(gw, 'gpt-4'), 'fine');
  });
});

test('normal ends: the 204 frame (whatever follows it) and grpc-status 0', async (t) => {
  const { up, gw } = await faultSetup(t);

  for (const [service, model] of [['vertex', 'gemini-1.5-pro'], ['gpt', 'gpt-4o']]) {
    // The Vertex service's habit (seed-behavior §8.5): RST_STREAM right after its last message.
    await t.test(`${service}: RST_STREAM INTERNAL_ERROR right after the 204 frame`, async () => {
      await up.play([msg('one '), { msg: { code: 204, text: 'two' } }, { rst: INTERNAL }]);
      assertComplete(await streamEvents(gw, model), 'one two');
    });
    await t.test(`${service}: TCP reset right after the 204 frame`, async () => {
      await up.play([msg('one '), { msg: { code: 204 } }, { tcp: 'reset' }]);
      assertComplete(await streamEvents(gw, model), 'one ');
    });
    await t.test(`${service}: grpc-status 0 without a 204 frame`, async () => {
      await up.play([msg('a'), msg('b'), { end: { status: 0 } }]);
      assertComplete(await streamEvents(gw, model), 'ab');
    });
  }
});

test('a non-stream answer cut before grpc-status 0 is an error, never the partial text', async (t) => {
  const { up, gw } = await faultSetup(t);

  for (const [service, model] of SERVICES) {
    for (const cut of CUTS) {
      await t.test(`${service}: ${cut.name}`, async () => {
        await up.play([msg('the whole answer?'), ...cut.steps]);
        const before = up.calls.length;
        const r = await post(gw, { model, messages: USER });
        const body = await r.text();
        assert.equal(r.status, 502, body);
        const err = JSON.parse(body).error;
        assert.deepEqual(Object.keys(err).sort(), ['code', 'message', 'type']);
        assert.equal(err.code, 'bad_gateway');
        if (cut.match) assert.match(err.message, cut.match);
        assert.ok(!body.includes('the whole answer?'), 'no partial text');
        assert.equal(up.calls.at(-1).method, 'Predict');
        assert.equal(up.calls.length - before, 1, 'an answered call is not retried');
      });
    }
    await t.test(`${service}: RST_STREAM after a 204 reply is still an error in non-stream mode`, async () => {
      await up.play([{ msg: { text: 'x', code: 204 } }, { rst: INTERNAL }]);
      assert.equal((await post(gw, { model, messages: USER })).status, 502);
    });
  }

  await t.test('the same reply with grpc-status 0 is a success', async () => {
    await up.play([msg('the whole answer'), { end: { status: 0 } }]);
    const r = await post(gw, { model: 'gpt-4', messages: USER });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).choices[0].message.content, 'the whole answer');
  });
});

test('one `created` per answer', async (t) => {
  const { up, gw } = await faultSetup(t);

  await t.test('GPT stream: the first reply time in every chunk, the final one too', async () => {
    await up.play([msg('a', { time: 1111 }), msg('b', { time: 2222 }), { msg: { code: 204, text: 'c', time: 3333 } }]);
    const chunks = assertComplete(await streamEvents(gw, 'gpt-4'), 'abc');
    assert.deepEqual([...new Set(chunks.map((c) => c.created))], [1111]);
  });

  await t.test('GPT stream with include_usage: the usage chunk too', async () => {
    await up.play([msg('a', { time: 1111 }), { msg: { code: 204, time: 3333 } }]);
    const r = await post(gw, { model: 'gpt-4', messages: USER, stream: true,
      stream_options: { include_usage: true } });
    const events = sseEvents(await r.text());
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.deepEqual([...new Set(chunks.map((c) => c.created))], [1111]);
  });

  await t.test('GPT non-stream: the same rule', async () => {
    await up.play([msg('a', { time: 1111 }), msg('b', { time: 2222 })]);
    const r = await (await post(gw, { model: 'gpt-4', messages: USER })).json();
    assert.equal(r.created, 1111);
  });

  await t.test('a first reply without a time: the request time, in every chunk', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    await up.play([msg('a'), msg('b', { time: 2222 }), { msg: { code: 204 } }]);
    const chunks = assertComplete(await streamEvents(gw, 'gpt-4'), 'ab');
    const created = [...new Set(chunks.map((c) => c.created))];
    assert.equal(created.length, 1);
    assert.ok(created[0] >= t0 && created[0] <= Math.floor(Date.now() / 1000), String(created));
  });

  await t.test('Vertex stream (no upstream time): one value for all chunks', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    await up.play([msg('a'), { delay: 1100 }, msg('b'), { delay: 1100 }, { msg: { code: 204 } }]);
    const chunks = assertComplete(await streamEvents(gw, 'gemini-1.5-pro'), 'ab');
    const created = [...new Set(chunks.map((c) => c.created))];
    assert.equal(created.length, 1, `chunks 1.1 s apart share created: ${created}`);
    assert.ok(created[0] >= t0 && created[0] <= Math.floor(Date.now() / 1000));
  });
});

// The gateway's attempts: MAX_RETRIES=2 means one back-off of 1 s. The timeouts are far away,
// so an answer well under them proves that nothing waited for them.
const NOT_H2_ENV = { MAX_RETRIES: '2', REQUEST_TIMEOUT: '60', STREAM_TIMEOUT: '60', TIMEOUT: '60' };

async function assertFast503(gw, stream) {
  const t0 = Date.now();
  const r = await post(gw, { model: 'gpt-4', messages: USER, stream });
  const body = await r.text();
  const ms = Date.now() - t0;
  assert.equal(r.status, 503, body);
  const err = JSON.parse(body).error;
  assert.equal(err.code, 'service_unavailable');
  assert.match(err.message, /HTTP\/2|closed by peer|reset by peer/);
  assert.ok(ms >= 900, `one back-off of 1 s between the two attempts (${ms} ms)`);
  assert.ok(ms < 15000, `fails fast, not after the 60 s timeouts (${ms} ms)`);
  return err;
}

test('an upstream that does not speak HTTP/2 fails fast with 503', async (t) => {
  await t.test('an HTTP/1.1 server', async (t) => {
    const h1 = await startHttp1();
    t.after(() => h1.close());
    const gw = await gatewayFor(t, h1.address, NOT_H2_ENV);
    for (const stream of [false, true]) {
      const err = await assertFast503(gw, stream);
      assert.match(err.message, /does not speak HTTP\/2/);
    }
  });

  await t.test('a server that sends garbage and keeps the connection open', async (t) => {
    const junk = await startGarbage();
    t.after(() => junk.close());
    const gw = await gatewayFor(t, junk.address, NOT_H2_ENV);
    const before = junk.accepted();
    for (const stream of [false, true]) {
      const err = await assertFast503(gw, stream);
      assert.match(err.message, /does not speak HTTP\/2/);
    }
    assert.ok(junk.accepted() - before >= 4, 'each attempt got a fresh connection');
    // and the pool is not left "connecting" forever
    const page = await (await fetch(`${gw.url}/`)).text();
    assert.doesNotMatch(page, /"queued":[1-9]/);
  });
});

// pieces-gateway end-to-end: request validation before dispatch. Invalid UTF-8 (raw bytes in the
// JSON body, not \u escapes) and lone surrogate escapes answer 400 naming the field; a prompt
// over the model's input limit answers 400 context_length_exceeded. The upstream mock must
// never see any of these requests.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { startMock } = require('./mock/mock');
const { startGateway, tmpDir } = require('./lib/gateway');

async function setup(t) {
  const mock = await startMock({ tls: null });
  const addr = `http://127.0.0.1:${mock.port}`;
  const gw = await startGateway({ dir: tmpDir(), env: {
    GPT_GRPC_ADDR: addr, VERTEX_GRPC_ADDR: addr, MIN_POOL_SIZE: '1', REQUEST_TIMEOUT: '60',
  } });
  t.after(async () => { await gw.stop(); await mock.close(); });
  return { gw, mock };
}

// POST raw bytes: `parts` are strings (UTF-8) and Buffers (raw bytes), concatenated.
async function postRaw(gw, parts, path = '/v1/chat/completions') {
  const body = Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8'))));
  const r = await fetch(`${gw.url}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body,
  });
  return { status: r.status, body: await r.json(), offsetOf: (i) => Buffer.concat(
    parts.slice(0, i).map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8')))).length };
}

const B = (...bytes) => Buffer.from(bytes);

// Each case: a body made of parts, the index of the part with the offending byte, the field.
const CASES = [
  { name: 'raw 0xFF in content', field: 'messages[2].content', what: 'invalid byte 0xFF',
    parts: ['{"model":"gpt-4o","messages":[{"role":"user","content":"a"},',
      '{"role":"assistant","content":"b"},{"role":"user","content":"x', B(0xff), 'y"}]}'], bad: 2 },
  { name: 'overlong "/" in name', field: 'messages[0].name', what: 'invalid byte 0xC0',
    parts: ['{"model":"gpt-4","messages":[{"role":"user","name":"', B(0xc0, 0xaf),
      '","content":"hi"}]}'], bad: 1 },
  { name: 'truncated sequence in system text (Vertex)', field: 'messages[0].content',
    what: 'invalid byte 0xE2', parts: ['{"model":"claude-3-haiku@20240307","messages":[',
      '{"role":"system","content":"be brief ', B(0xe2, 0x82), '"},',
      '{"role":"user","content":"hi"}]}'], bad: 2 },
  { name: 'truncated 4-byte sequence at the end of a system message (GPT)',
    field: 'messages[0].content', what: 'invalid byte 0xF0',
    parts: ['{"model":"gpt-4o-mini","messages":[{"role":"system","content":"ok ',
      B(0xf0, 0x9f, 0x98), '"},{"role":"user","content":"hi"}]}'], bad: 1 },
  { name: 'UTF-8 encoded surrogate in a content part', field: 'messages[0].content[1].text',
    what: 'invalid byte 0xED', parts: ['{"model":"gemini-pro","messages":[{"role":"user",',
      '"content":[{"type":"text","text":"a"},{"type":"text","text":"', B(0xed, 0xa0, 0x80),
      '"}]}]}'], bad: 2 },
  { name: 'invalid byte in the model', field: 'model', what: 'invalid byte 0xFE',
    parts: ['{"model":"gpt-4', B(0xfe), '","messages":[{"role":"user","content":"hi"}]}'], bad: 1 },
  { name: 'lone surrogate escape (the same rule)', field: 'messages[0].content',
    what: 'lone surrogate escape \\ud800',
    parts: ['{"model":"gpt-4o","messages":[{"role":"user","content":"x', '\\ud800',
      '"}]}'], bad: 1 },
];

test('invalid UTF-8 never goes upstream', async (t) => {
  const { gw, mock } = await setup(t);

  for (const c of CASES) {
    await t.test(c.name, async () => {
      for (const stream of [false, true]) {
        const parts = stream ? [...c.parts.slice(0, -1), c.parts.at(-1).replace(/}$/, ',"stream":true}')]
          : c.parts;
        const r = await postRaw(gw, parts);
        assert.equal(r.status, 400);
        assert.deepEqual(r.body, { error: { code: 'invalid_request', type: 'error',
          message: `${c.field} is not valid UTF-8: ${c.what} at body offset ${r.offsetOf(c.bad)}` } });
      }
      assert.equal(mock.requests.length, 0, 'the upstream saw nothing');
    });
  }

  await t.test('the same text, valid, reaches the upstream', async () => {
    const r = await postRaw(gw, ['{"model":"gpt-4o","messages":[{"role":"user","content":"caf',
      B(0xc3, 0xa9), ' \\ud83d\\ude00"}]}']);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(mock.requests.length, 1);
    const sent = JSON.stringify(mock.requests[0].request);
    assert.ok(sent.includes('café 😀'), sent);
  });
});

test('context length is checked before dispatch', async (t) => {
  const { gw, mock } = await setup(t);
  const count = async (model, content) => {
    const r = await fetch(`${gw.url}/v1/tokenize`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content }] }) });
    return (await r.json()).tokens;
  };

  await t.test('a 6 MiB prompt answers 400 context_length_exceeded (gpt-4o: 64000)', async () => {
    const content = 'lorem ipsum dolor sit amet '.repeat(6 * 1024 * 1024 / 27);
    const want = await count('gpt-4o', content);
    assert.ok(want > 64000);
    const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content }], stream: true }) });
    assert.equal(r.status, 400);
    assert.deepEqual(await r.json(), { error: { code: 'context_length_exceeded',
      type: 'invalid_request_error',
      message: `This model's maximum context length is 64000 tokens. However, your messages `
        + `resulted in ${want} tokens. Please reduce the length of the messages.` } });
    assert.equal(mock.requests.length, 0, 'the upstream saw nothing');
  });

  await t.test('one token over the limit, Vertex (claude: 35000)', async () => {
    // grow a prompt to exactly 35001 tokens with the gateway's own count
    const model = 'claude-3-5-sonnet@20240620';
    let content = 'a '.repeat(34000);
    for (let i = 0; i < 10; i++) {
      const diff = 35001 - await count(model, content);
      if (diff === 0) break;
      content = diff > 0 ? content + 'a '.repeat(diff) : content.slice(0, diff * 2);
    }
    assert.equal(await count(model, content), 35001);
    const r = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content }] }) });
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.equal(body.error.code, 'context_length_exceeded');
    assert.match(body.error.message, /maximum context length is 35000 tokens\. However, your messages resulted in 35001 tokens\./);
    assert.equal(mock.requests.length, 0, 'the upstream saw nothing');

    // at the limit it goes through
    const at = content.slice(0, -2);
    assert.equal(await count(model, at), 35000);
    const ok = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: at }] }) });
    assert.equal(ok.status, 200, await ok.text());
    assert.equal(mock.requests.length, 1);
    assert.equal(mock.requests[0].model, model);
  });
});

// pieces-gateway end-to-end: the Anthropic Messages and OpenAI Responses ingress formats.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
//
// The official @anthropic-ai/sdk, the official openai client (Responses) and the Vercel AI SDK's
// default OpenAI provider (which speaks Responses) against the built gateway, with the grpc-js
// Pieces mock (GPT and Claude models) and the OpenAI-compatible mock as backends.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const AnthropicMod = require('@anthropic-ai/sdk');
const OpenAI = require('openai');
const { generateText, streamText, tool, jsonSchema } = require('ai');
const { createOpenAI } = require('@ai-sdk/openai');
const { startMock } = require('./mock/mock');
const { startOpenAIMock } = require('./mock/openai');
const { startGateway, tmpDir, freePort, raw, parseResponses } = require('./lib/gateway');

const Anthropic = AnthropicMod.default || AnthropicMod;
const KEY = 'client-key-1';
const USER = [{ role: 'user', content: 'hi' }];
const WEATHER = { name: 'get_weather', description: 'Weather of a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

async function setup(t, { pieces = true, oai = false } = {}) {
  const dir = tmpDir();
  const mock = pieces ? await startMock({}) : null;
  const up = oai ? await startOpenAIMock({}) : null;
  const dead = `http://127.0.0.1:${await freePort()}`;
  const addr = mock ? `http://127.0.0.1:${mock.port}` : dead;
  const env = { GPT_GRPC_ADDR: addr, VERTEX_GRPC_ADDR: addr, MIN_POOL_SIZE: '1', API_KEY: KEY,
    MAX_RETRIES: '1' };
  if (up) {
    Object.assign(env, { OPENAI_BASE_URL: `${up.url}/v1`, OPENAI_API_KEY: 'sk-up',
      OPENAI_MODELS: 'tools,status-429,status-500,length,error-mid,up-text=gpt-4o' });
  }
  const gw = await startGateway({ dir, env });
  t.after(async () => { await gw.stop(); if (mock) await mock.close(); if (up) await up.close(); });
  const anthropic = new Anthropic({ apiKey: KEY, baseURL: gw.url, maxRetries: 0, timeout: 30000 });
  const openai = new OpenAI({ apiKey: KEY, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 30000 });
  return { gw, mock, up, anthropic, openai };
}

function post(gw, path, body, headers = {}) {
  return fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json',
    authorization: `Bearer ${KEY}`, ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body) });
}

// A text/event-stream body as [{ event, data }] (data parsed).
function sseEvents(text) {
  return text.split('\n\n').filter((b) => b.trim()).map((b) => {
    const ev = /^event: (.*)$/m.exec(b);
    const data = /^data: (.*)$/m.exec(b);
    return { event: ev && ev[1], data: data && JSON.parse(data[1]) };
  });
}

async function anthropicError(res, status, type) {
  assert.equal(res.status, status);
  const b = await res.json();
  assert.equal(b.type, 'error');
  assert.equal(b.error.type, type);
  assert.equal(typeof b.error.message, 'string');
  return b;
}

// Every backend: the Pieces mock with a GPT and a Claude model, the OpenAI-compatible mock.
const MODELS = [['gpt-4o', 'pieces'], ['claude-3-5-sonnet-20240620', 'pieces'], ['up-text', 'openai']];

// The system prompt as the backend received it.
function sentSystem(mock, up, backend) {
  if (backend === 'openai') return up.requests.at(-1).body.messages[0];
  return JSON.stringify(mock.requests.at(-1).request);
}

test('Anthropic SDK on every backend (Pieces GPT and Claude, OpenAI-compatible)', async (t) => {
  const { anthropic, gw, mock, up } = await setup(t, { pieces: true, oai: true });

  for (const [model, backend] of MODELS) {
    await t.test(`messages.create ${model} (${backend})`, async () => {
      const m = await anthropic.messages.create({ model, max_tokens: 64, messages: USER,
        system: 'Be brief.' });
      assert.match(m.id, /^msg_[0-9a-f]{28}$/);
      assert.equal(m.type, 'message');
      assert.equal(m.role, 'assistant');
      assert.equal(m.model, model);
      assert.deepEqual(m.content, [{ type: 'text', text: 'Hello, world' }]);
      assert.equal(m.stop_reason, 'end_turn');
      assert.equal(m.stop_sequence, null);
      assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
      if (backend === 'openai') {
        assert.deepEqual(m.usage, { input_tokens: 17, output_tokens: 5 }); // the upstream's
        assert.deepEqual(sentSystem(mock, up, backend), { role: 'system', content: 'Be brief.' });
      } else {
        assert.match(sentSystem(mock, up, backend), /Be brief\./);
      }
    });

    await t.test(`messages.stream ${model} (${backend})`, async () => {
      const s = anthropic.messages.stream({ model, max_tokens: 64, messages: USER });
      let text = '';
      const types = [];
      s.on('text', (d) => { text += d; });
      s.on('streamEvent', (e) => types.push(e.type));
      const final = await s.finalMessage();
      assert.equal(text, 'Hello, world');
      assert.equal(final.content.length, 1);
      assert.equal(final.content[0].type, 'text');
      assert.equal(final.content[0].text, 'Hello, world');
      assert.equal(final.stop_reason, 'end_turn');
      assert.ok(final.usage.input_tokens > 0 && final.usage.output_tokens > 0);
      assert.equal(types[0], 'message_start');
      assert.equal(types.at(-1), 'message_stop');
      assert.ok(types.includes('content_block_start') && types.includes('content_block_stop'));
      assert.ok(types.includes('message_delta'));
    });
  }

  await t.test('stop_sequences end the text on every backend (stop_reason stop_sequence)',
    async () => {
      for (const [model, backend] of MODELS) {
        const req = { model, max_tokens: 64, messages: USER, stop_sequences: ['zzz', ', w'] };
        const m = await anthropic.messages.create(req);
        assert.deepEqual(m.content, [{ type: 'text', text: 'Hello' }], model);
        assert.equal(m.stop_reason, 'stop_sequence');
        assert.equal(m.stop_sequence, ', w');
        assert.ok(m.usage.output_tokens > 0);
        if (backend === 'openai') assert.equal(up.requests.at(-1).body.stop, undefined);
        const s = anthropic.messages.stream({ ...req, stop_sequences: ['orl'] });
        let text = '';
        s.on('text', (d) => { text += d; });
        const final = await s.finalMessage();
        assert.equal(text, 'Hello, w', model);
        assert.equal(final.stop_reason, 'stop_sequence');
        assert.equal(final.stop_sequence, 'orl');
        const none = await anthropic.messages.create({ ...req, stop_sequences: ['zzz'] });
        assert.equal(none.content[0].text, 'Hello, world');
        assert.equal(none.stop_reason, 'end_turn');
        assert.equal(none.stop_sequence, null);
      }
      await anthropicError(await post(gw, '/v1/messages', { model: 'gpt-4o', max_tokens: 8,
        messages: USER, stop_sequences: [''] }), 400, 'invalid_request_error');
    });

  await t.test('the raw event sequence: event lines, one ping after the first block start',
    async () => {
      for (const [model] of MODELS) {
        const res = await post(gw, '/v1/messages', { model, max_tokens: 64, messages: USER,
          stream: true });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type'), /^text\/event-stream/);
        const events = sseEvents(await res.text());
        for (const e of events) assert.equal(e.data.type, e.event, model);
        const names = events.map((e) => e.event);
        const n = names.filter((x) => x === 'content_block_delta').length;
        assert.ok(n > 0, model);
        assert.deepEqual(names, ['message_start', 'content_block_start', 'ping',
          ...Array(n).fill('content_block_delta'), 'content_block_stop', 'message_delta',
          'message_stop'], model);
        assert.ok(events[0].data.message.usage.input_tokens > 0);
        assert.equal(events[0].data.message.stop_reason, null);
        assert.deepEqual(events[1].data.content_block, { type: 'text', text: '' });
        assert.equal(events.map((e) => e.data.delta && e.data.delta.text).join(''),
          'Hello, world');
        const md = events.at(-2).data;
        assert.deepEqual(md.delta, { stop_reason: 'end_turn', stop_sequence: null });
        assert.ok(md.usage.output_tokens > 0, model);
      }
    });

  await t.test('messages.countTokens is the prompt count of messages.create', async () => {
    for (const model of ['gpt-4o', 'claude-3-5-sonnet-20240620']) {
      const req = { model, system: 'Be brief.', messages: [...USER,
        { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'again' }] };
      const c = await anthropic.messages.countTokens(req);
      const m = await anthropic.messages.create({ ...req, max_tokens: 8 });
      assert.equal(c.input_tokens, m.usage.input_tokens, model);
      assert.ok(c.input_tokens > 5, model);
    }
  });

  await t.test('typed errors: 401, 404, 400 in Anthropic shape', async () => {
    const bad = new Anthropic({ apiKey: 'wrong', baseURL: gw.url, maxRetries: 0 });
    await assert.rejects(bad.messages.create({ model: 'gpt-4o', max_tokens: 8, messages: USER }),
      (e) => e instanceof Anthropic.AuthenticationError && e.status === 401
        && e.error.error.type === 'authentication_error');
    await assert.rejects(anthropic.messages.create({ model: 'no-such-model', max_tokens: 8,
      messages: USER }), (e) => e instanceof Anthropic.NotFoundError && e.status === 404);
    await assert.rejects(anthropic.messages.create({ model: 'gpt-4o', messages: USER }),
      (e) => e instanceof Anthropic.BadRequestError && /max_tokens/.test(e.message));
  });

  await t.test('x-api-key and anthropic-version accepted; malformed requests', async () => {
    const ok = await post(gw, '/v1/messages', { model: 'gpt-4o', max_tokens: 8, messages: USER },
      { authorization: '', 'x-api-key': KEY, 'anthropic-version': '2023-06-01' });
    assert.equal(ok.status, 200);
    // the beta client (Claude Code) adds ?beta=true and beta headers; cache_control is ignored
    const beta = await anthropic.beta.messages.create({ model: 'gpt-4o', max_tokens: 8,
      betas: ['prompt-caching-2024-07-31'], system: [{ type: 'text', text: 'S',
        cache_control: { type: 'ephemeral' } }], messages: USER });
    assert.equal(beta.content[0].text, 'Hello, world');
    await anthropicError(await post(gw, '/v1/messages', '{"model":', {}), 400,
      'invalid_request_error');
    await anthropicError(await post(gw, '/v1/messages', { model: 'gpt-4o', max_tokens: 8,
      messages: [{ role: 'robot', content: 'x' }] }), 400, 'invalid_request_error');
    await anthropicError(await post(gw, '/v1/messages', { model: 'gpt-4o', max_tokens: 0,
      messages: USER }), 400, 'invalid_request_error');
    await anthropicError(await post(gw, '/v1/messages', { model: 'gpt-4o', max_tokens: 8,
      messages: USER }, { authorization: '' }), 401, 'authentication_error');
    const get = await fetch(`${gw.url}/v1/messages`, { headers: { authorization: `Bearer ${KEY}` } });
    await anthropicError(get, 405, 'invalid_request_error');
  });
});

test('Anthropic SDK against the OpenAI-compatible backend: tools, mapping, failures', async (t) => {
  const { anthropic, up, gw } = await setup(t, { pieces: false, oai: true });

  await t.test('tool_use, then tool_result', async () => {
    const m = await anthropic.messages.create({ model: 'tools', max_tokens: 64, messages: USER,
      tools: [WEATHER], tool_choice: { type: 'auto' } });
    assert.equal(m.stop_reason, 'tool_use');
    const use = m.content.find((b) => b.type === 'tool_use');
    assert.deepEqual({ id: use.id, name: use.name, input: use.input },
      { id: 'call_mock1', name: 'get_weather', input: { city: 'Paris' } });
    const sent = up.requests.at(-1).body;
    assert.deepEqual(sent.tools, [{ type: 'function', function: { name: 'get_weather',
      description: 'Weather of a city', parameters: WEATHER.input_schema } }]);
    assert.equal(sent.tool_choice, 'auto');
    assert.equal(sent.max_tokens, 64);
    const next = await anthropic.messages.create({ model: 'up-text', max_tokens: 64, tools: [WEATHER],
      messages: [...USER, { role: 'assistant', content: m.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] }] });
    assert.equal(next.content[0].text, 'Hello, world');
    const msgs = up.requests.at(-1).body.messages;
    assert.deepEqual(msgs.at(-2).tool_calls, [{ id: 'call_mock1', type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
    assert.deepEqual(msgs.at(-1), { role: 'tool', tool_call_id: 'call_mock1', content: 'sunny' });
  });

  await t.test('streamed tool call: input_json_delta reassembled by the SDK', async () => {
    const s = anthropic.messages.stream({ model: 'tools', max_tokens: 64, messages: USER,
      tools: [WEATHER] });
    const final = await s.finalMessage();
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual(final.content.find((b) => b.type === 'tool_use').input, { city: 'Paris' });
    assert.deepEqual(final.usage.output_tokens, 5); // the upstream's numbers
    assert.equal(final.usage.input_tokens, 17);
  });

  await t.test('max_tokens stop reason and a 429 as RateLimitError', async () => {
    const m = await anthropic.messages.create({ model: 'length', max_tokens: 3, messages: USER });
    assert.equal(m.stop_reason, 'max_tokens');
    await assert.rejects(anthropic.messages.create({ model: 'status-429', max_tokens: 3,
      messages: USER }), (e) => e instanceof Anthropic.RateLimitError && e.status === 429);
    await assert.rejects(anthropic.messages.create({ model: 'status-500', max_tokens: 3,
      messages: USER }), (e) => e instanceof Anthropic.APIError && e.status === 502
        && e.error.error.type === 'api_error');
  });

  await t.test('sampling, metadata, system blocks and images reach the backend (stops: the gateway)',
    async () => {
      const png = 'iVBORw0KGgo=';
      const m = await anthropic.messages.create({ model: 'up-text', max_tokens: 32,
        temperature: 0.5, top_p: 0.9, top_k: 40, stop_sequences: ['END'],
        metadata: { user_id: 'u-1' }, system: [{ type: 'text', text: 'A' }, { type: 'text', text: 'B' }],
        messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } }] }] });
      assert.equal(m.content[0].text, 'Hello, world');
      const sent = up.requests.at(-1).body;
      assert.deepEqual({ max_tokens: sent.max_tokens, temperature: sent.temperature,
        top_p: sent.top_p, top_k: sent.top_k, stop: sent.stop, user: sent.user },
      { max_tokens: 32, temperature: 0.5, top_p: 0.9, top_k: 40, stop: undefined, user: 'u-1' });
      assert.deepEqual(sent.messages, [{ role: 'system', content: 'AB' }, { role: 'user', content: [
        { type: 'text', text: 'what is this?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
        { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }]);
      const any = await anthropic.messages.create({ model: 'tools', max_tokens: 32, messages: USER,
        tools: [WEATHER], tool_choice: { type: 'tool', name: 'get_weather',
          disable_parallel_tool_use: true } });
      assert.equal(any.stop_reason, 'tool_use');
      const forced = up.requests.at(-1).body;
      assert.deepEqual(forced.tool_choice, { type: 'function', function: { name: 'get_weather' } });
      assert.equal(forced.parallel_tool_calls, false);
    });

  await t.test('a failure after the stream started is one error event', async () => {
    const res = await post(gw, '/v1/messages', { model: 'error-mid', max_tokens: 8,
      messages: USER, stream: true });
    assert.equal(res.status, 200);
    const events = sseEvents(await res.text());
    assert.equal(events[0].event, 'message_start');
    const last = events.at(-1);
    assert.equal(last.event, 'error');
    assert.equal(last.data.type, 'error');
    assert.ok(['api_error', 'overloaded_error'].includes(last.data.error.type), last.data.error.type);
    assert.equal(typeof last.data.error.message, 'string');
    assert.ok(!events.some((e) => e.event === 'message_stop'));
    const s = anthropic.messages.stream({ model: 'error-mid', max_tokens: 8, messages: USER });
    await assert.rejects(s.finalMessage(), (e) => e instanceof Anthropic.APIError);
  });
});

test('openai client: Responses API on every backend, text and function calls', async (t) => {
  const { openai, gw, up } = await setup(t, { pieces: true, oai: true });

  for (const [model, backend] of MODELS) {
    await t.test(`responses.create ${model} (${backend})`, async () => {
      const r = await openai.responses.create({ model, input: 'hi', instructions: 'Be brief.',
        store: true });
      assert.match(r.id, /^resp_[0-9a-f]{28}$/);
      assert.equal(r.object, 'response');
      assert.equal(r.status, 'completed');
      assert.equal(r.model, model);
      assert.equal(r.store, false); // nothing is stored, whatever the request said
      assert.equal(r.output_text, 'Hello, world');
      assert.equal(r.output[0].type, 'message');
      assert.equal(r.output[0].content[0].type, 'output_text');
      assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
      assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
      if (backend === 'openai') {
        assert.equal(r.usage.total_tokens, 22); // the upstream's numbers
        assert.deepEqual(up.requests.at(-1).body.messages, [
          { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }]);
        assert.equal(up.requests.at(-1).body.store, undefined);
      }
    });

    await t.test(`responses.stream ${model} (${backend})`, async () => {
      const s = openai.responses.stream({ model, input: 'hi' });
      let text = '';
      const types = [];
      const seq = [];
      s.on('response.output_text.delta', (e) => { text += e.delta; });
      s.on('event', (e) => { types.push(e.type); seq.push(e.sequence_number); });
      const final = await s.finalResponse();
      assert.equal(text, 'Hello, world');
      assert.equal(final.output_text, 'Hello, world');
      assert.equal(final.status, 'completed');
      assert.ok(final.usage.output_tokens > 0);
      assert.deepEqual(seq, seq.map((_, i) => i));
      const n = types.filter((x) => x === 'response.output_text.delta').length;
      assert.deepEqual(types, ['response.created', 'response.in_progress',
        'response.output_item.added', 'response.content_part.added',
        ...Array(n).fill('response.output_text.delta'), 'response.output_text.done',
        'response.content_part.done', 'response.output_item.done', 'response.completed']);
    });
  }

  await t.test('the response object echoes the request parameters (create, stream)', async () => {
    const echo = {
      instructions: 'Sys', max_output_tokens: 40, parallel_tool_calls: false, temperature: 0.2,
      top_p: 0.8, tool_choice: 'required', metadata: { k: 'v' }, user: 'u1',
      tools: [{ type: 'function', name: 'f', description: 'd', strict: true,
        parameters: { type: 'object', properties: {}, required: [], additionalProperties: false } }],
      text: { format: { type: 'json_schema', name: 'answer', strict: true,
        schema: { type: 'object', properties: { a: { type: 'string' } } } } },
    };
    const pick = (r) => Object.fromEntries(Object.keys(echo).map((k) => [k, r[k]]));
    const r = await openai.responses.create({ model: 'up-text', input: 'x', ...echo });
    assert.deepEqual(pick(r), echo);
    // (raw: the SDK's stream would parse the text as the json_schema's JSON)
    const res = await post(gw, '/v1/responses', { model: 'up-text', input: 'x', stream: true,
      ...echo });
    const objs = sseEvents(await res.text()).filter((e) => e.data.response);
    assert.deepEqual(objs.map((e) => e.event),
      ['response.created', 'response.in_progress', 'response.completed']);
    for (const e of objs) assert.deepEqual(pick(e.data.response), echo);
    const st = openai.responses.stream({ model: 'up-text', input: 'x', user: 'u3', top_p: 0.5 });
    const fin = await st.finalResponse();
    assert.deepEqual([fin.user, fin.top_p, fin.tools], ['u3', 0.5, []]);
    // absent: OpenAI's defaults
    const d = await openai.responses.create({ model: 'up-text', input: 'x' });
    assert.deepEqual(pick(d), { instructions: null, max_output_tokens: null,
      parallel_tool_calls: true, temperature: 1, top_p: 1, tool_choice: 'auto', metadata: {},
      user: null, tools: [], text: { format: { type: 'text' } } });
    // incomplete and failed stream events echo too
    for (const [model, type] of [['length', 'response.incomplete'],
      ['error-mid', 'response.failed']]) {
      const res = await post(gw, '/v1/responses', { model, input: 'x', stream: true,
        max_output_tokens: 3, user: 'u2', tool_choice: 'none' });
      const last = sseEvents(await res.text()).at(-1);
      assert.equal(last.event, type);
      assert.equal(last.data.response.user, 'u2');
      assert.equal(last.data.response.tool_choice, 'none');
      assert.equal(last.data.response.max_output_tokens, 3);
    }
  });

  await t.test('text.format json_schema, input_image and sampling reach the backend', async () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'],
      additionalProperties: false };
    const img = 'data:image/png;base64,iVBORw0KGgo=';
    const r = await openai.responses.create({ model: 'up-text', instructions: 'Sys',
      temperature: 0.2, top_p: 0.8, max_output_tokens: 40, store: false,
      text: { format: { type: 'json_schema', name: 'answer', schema, strict: true } },
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'describe' },
        { type: 'input_image', image_url: img, detail: 'low' }] }] });
    assert.equal(r.status, 'completed');
    const sent = up.requests.at(-1).body;
    assert.deepEqual(sent.response_format, { type: 'json_schema',
      json_schema: { name: 'answer', schema, strict: true } });
    assert.deepEqual({ t: sent.temperature, p: sent.top_p, m: sent.max_tokens },
      { t: 0.2, p: 0.8, m: 40 });
    assert.deepEqual(sent.messages, [{ role: 'system', content: 'Sys' }, { role: 'user', content: [
      { type: 'text', text: 'describe' },
      { type: 'image_url', image_url: { url: img, detail: 'low' } }] }]);
    await openai.responses.create({ model: 'up-text', input: 'x',
      text: { format: { type: 'json_object' } } });
    assert.deepEqual(up.requests.at(-1).body.response_format, { type: 'json_object' });
  });

  await t.test('max_output_tokens hit: incomplete; a failure after the start: response.failed',
    async () => {
      const r = await openai.responses.create({ model: 'length', input: 'x', max_output_tokens: 3 });
      assert.equal(r.status, 'incomplete');
      assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
      const res = await post(gw, '/v1/responses', { model: 'error-mid', input: 'x', stream: true });
      assert.equal(res.status, 200);
      const events = sseEvents(await res.text());
      assert.equal(events[0].event, 'response.created');
      const last = events.at(-1);
      assert.equal(last.event, 'response.failed');
      assert.equal(last.data.response.status, 'failed');
      assert.equal(typeof last.data.response.error.message, 'string');
      assert.deepEqual(events.map((e) => e.data.sequence_number), events.map((_, i) => i));
      assert.ok(!events.some((e) => e.event === 'response.completed'));
    });

  await t.test('responses.create function call (OpenAI backend)', async () => {
    const tools = [{ type: 'function', name: 'get_weather', parameters: WEATHER.input_schema,
      strict: false }];
    const r = await openai.responses.create({ model: 'tools', input: [{ role: 'user',
      content: [{ type: 'input_text', text: 'weather?' }] }], tools, max_output_tokens: 50 });
    const call = r.output.find((o) => o.type === 'function_call');
    assert.equal(call.name, 'get_weather');
    assert.equal(call.call_id, 'call_mock1');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    assert.deepEqual(r.usage, { input_tokens: 17, input_tokens_details: { cached_tokens: 0 },
      output_tokens: 5, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 22 });
    const sent = up.requests.at(-1).body;
    assert.equal(sent.max_tokens, 50);
    assert.deepEqual(sent.messages, [{ role: 'user', content: 'weather?' }]);
    const next = await openai.responses.create({ model: 'up-text', tools, input: [
      { role: 'user', content: 'weather?' }, call,
      { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }] });
    assert.equal(next.output_text, 'Hello, world');
    const msgs = up.requests.at(-1).body.messages;
    assert.equal(msgs.at(-2).tool_calls[0].id, 'call_mock1');
    assert.deepEqual(msgs.at(-1), { role: 'tool', tool_call_id: 'call_mock1', content: 'sunny' });
  });

  await t.test('responses.stream text and function calls', async () => {
    const s = openai.responses.stream({ model: 'claude-3-5-sonnet-20240620', input: 'hi' });
    let text = '';
    const seq = [];
    s.on('response.output_text.delta', (e) => { text += e.delta; });
    s.on('event', (e) => seq.push(e.sequence_number));
    const final = await s.finalResponse();
    assert.equal(text, 'Hello, world');
    assert.equal(final.output_text, 'Hello, world');
    assert.ok(final.usage.output_tokens > 0);
    assert.deepEqual(seq, seq.map((_, i) => i));
    const events = [];
    const st = await openai.responses.create({ model: 'tools', input: 'hi', stream: true,
      tools: [{ type: 'function', name: 'get_weather', parameters: WEATHER.input_schema }] });
    for await (const e of st) events.push(e);
    const types = events.map((e) => e.type);
    assert.deepEqual(types.slice(0, 3), ['response.created', 'response.in_progress',
      'response.output_item.added']);
    assert.ok(types.includes('response.function_call_arguments.delta'));
    const done = events.find((e) => e.type === 'response.function_call_arguments.done');
    assert.deepEqual(JSON.parse(done.arguments), { city: 'Paris' });
    assert.equal(types.at(-1), 'response.completed');
    assert.equal(events.at(-1).response.usage.total_tokens, 22);
  });

  await t.test('malformed requests and stateless semantics', async () => {
    const check = async (body, status, re) => {
      const res = await post(gw, '/v1/responses', body);
      assert.equal(res.status, status);
      const b = await res.json();
      assert.match(b.error.message, re);
      assert.equal(typeof b.error.code, 'string');
    };
    await check({ model: 'gpt-4o', input: 'hi', previous_response_id: 'resp_1' }, 400, /stateless/);
    await check({ model: 'gpt-4o' }, 400, /input/);
    await check('{"model":', 400, /JSON/);
    await check({ model: 'gpt-4o', input: [{ type: 'reasoning' }] }, 400, /unsupported/);
    await check({ model: 'gpt-4o', input: 'x', tools: [{ type: 'web_search' }] }, 400, /function/);
    await check({ model: 'nope', input: 'x' }, 404, /does not exist/);
    await assert.rejects(new OpenAI({ apiKey: 'bad', baseURL: `${gw.url}/v1`, maxRetries: 0 })
      .responses.create({ model: 'gpt-4o', input: 'x' }),
    (e) => e instanceof OpenAI.AuthenticationError);
  });
});

test('Vercel AI SDK default provider (Responses): generateText and streamText', async (t) => {
  const { gw } = await setup(t, { pieces: true, oai: true });
  const urls = [];
  const provider = createOpenAI({ apiKey: KEY, baseURL: `${gw.url}/v1`,
    fetch: (u, o) => { urls.push(String(u)); return fetch(u, o); } });

  for (const model of ['gpt-4o', 'claude-3-5-sonnet-20240620', 'up-text']) {
    await t.test(`generateText ${model}`, async () => {
      const r = await generateText({ model: provider(model), prompt: 'hi', maxRetries: 0 });
      assert.equal(r.text, 'Hello, world');
      assert.ok(r.usage.inputTokens > 0 && r.usage.outputTokens > 0);
      assert.equal(r.finishReason, 'stop');
      assert.ok(urls.at(-1).endsWith('/v1/responses'));
    });

    await t.test(`streamText ${model}`, async () => {
      const r = streamText({ model: provider(model), prompt: 'hi', maxRetries: 0 });
      let text = '';
      for await (const d of r.textStream) text += d;
      assert.equal(text, 'Hello, world');
      assert.ok((await r.usage).outputTokens > 0);
      assert.equal(await r.finishReason, 'stop');
      assert.ok(urls.at(-1).endsWith('/v1/responses'));
    });
  }

  await t.test('tool call through generateText and streamText', async () => {
    const tools = { get_weather: tool({ description: 'Weather of a city',
      inputSchema: jsonSchema(WEATHER.input_schema) }) };
    const r = await generateText({ model: provider('tools'), prompt: 'hi', tools, maxRetries: 0 });
    assert.equal(r.toolCalls[0].toolName, 'get_weather');
    assert.deepEqual(r.toolCalls[0].input, { city: 'Paris' });
    const s = streamText({ model: provider('tools'), prompt: 'hi', tools, maxRetries: 0 });
    const calls = await s.toolCalls;
    assert.deepEqual(calls[0].input, { city: 'Paris' });
  });
});

test('the access log and the metrics name the ingress format', async (t) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const drive = async (gw) => {
    assert.equal((await post(gw, '/v1/messages', { model: 'gpt-4o', max_tokens: 8,
      messages: USER })).status, 200);
    assert.equal((await post(gw, '/v1/messages/count_tokens', { model: 'gpt-4o',
      messages: USER })).status, 200);
    assert.equal((await post(gw, '/v1/responses', { model: 'gpt-4o', input: 'hi' })).status, 200);
    assert.equal((await post(gw, '/v1/chat/completions', { model: 'gpt-4o',
      messages: USER })).status, 200);
    assert.equal((await post(gw, '/v1/messages', { model: 'gpt-4o', max_tokens: 8,
      messages: USER }, { authorization: '' })).status, 401);
    await sleep(100); // access lines are written when the responses completed
  };

  await t.test('text line: Ingress= on the Messages and Responses paths only', async () => {
    const { gw } = await setup(t);
    await drive(gw);
    const lines = gw.stdout.split('\n');
    const line = (re) => lines.find((l) => re.test(l)) || assert.fail(`${re}\n${gw.stdout}`);
    assert.match(line(/POST \/v1\/messages model=gpt-4o .*Status=200/),
      / Backend=pieces Usage=tokenizer Ingress=messages$/);
    assert.match(line(/POST \/v1\/messages\/count_tokens /), / Ingress=messages$/);
    assert.match(line(/POST \/v1\/responses /),
      / Backend=pieces Usage=tokenizer Ingress=responses$/);
    assert.match(line(/POST \/v1\/messages .*Status=401/), / Ingress=messages$/);
    assert.doesNotMatch(line(/POST \/v1\/chat\/completions /), /Ingress/);
    const m = await (await fetch(`${gw.url}/metrics`)).text();
    for (const route of ['messages', 'count_tokens', 'responses', 'chat']) {
      assert.match(m, new RegExp(`^gateway_http_requests_total\\{route="${route}",method="POST",` +
        'status="200"\\} 1$', 'm'), route);
    }
    assert.match(m,
      /^gateway_http_requests_total\{route="messages",method="POST",status="401"\} 1$/m);
  });

  await t.test('JSON line: the ingress field', async () => {
    const mock = await startMock({});
    const addr = `http://127.0.0.1:${mock.port}`;
    const gw = await startGateway({ dir: tmpDir(), env: { GPT_GRPC_ADDR: addr,
      VERTEX_GRPC_ADDR: addr, MIN_POOL_SIZE: '1', API_KEY: KEY, ACCESS_LOG_FORMAT: 'json' } });
    t.after(async () => { await gw.stop(); await mock.close(); });
    await drive(gw);
    const lines = gw.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const got = lines.map((l) => [l.uri, l.status, l.route, l.ingress]);
    assert.deepEqual(got.filter((g) => g[0].startsWith('/v1/')), [
      ['/v1/messages', 200, 'messages', 'messages'],
      ['/v1/messages/count_tokens', 200, 'count_tokens', 'messages'],
      ['/v1/responses', 200, 'responses', 'responses'],
      ['/v1/chat/completions', 200, 'chat', 'chat'],
      ['/v1/messages', 401, 'messages', 'messages'],
    ]);
  });
});

test('the LLM metric families count ingress requests by model, backend and stream', async (t) => {
  const { gw } = await setup(t, { pieces: true, oai: true });
  const targets = [['gpt-4o', 'pieces'], ['up-text', 'openai']];
  for (const [model] of targets) {
    for (const stream of [false, true]) {
      for (const [path, body] of [['/v1/messages', { model, max_tokens: 8, messages: USER, stream }],
        ['/v1/responses', { model, input: 'hi', stream }]]) {
        const res = await post(gw, path, body);
        assert.equal(res.status, 200, `${path} ${model} ${stream}`);
        await res.text();
      }
    }
    const c = await post(gw, '/v1/messages/count_tokens', { model, messages: USER });
    assert.equal(c.status, 200); // answered by the policy: no LLM call
    await c.text();
  }
  await new Promise((r) => setTimeout(r, 100)); // recorded when the responses completed
  const m = await (await fetch(`${gw.url}/metrics`)).text();
  const sample = (name) => {
    const line = m.split('\n').find((l) => l.startsWith(`${name} `));
    assert.ok(line, `${name} missing:\n${m.split('\n').filter((l) => l.startsWith('gateway_llm')).join('\n')}`);
    return Number(line.split(' ')[1]);
  };
  for (const [model, backend] of targets) {
    for (const stream of ['false', 'true']) {
      assert.equal(sample(`gateway_llm_requests_total{model="${model}",backend="${backend}",` +
        `stream="${stream}",status="200"}`), 2, `${model} stream=${stream}`);
      assert.equal(sample(`gateway_llm_request_duration_seconds_count{model="${model}",` +
        `backend="${backend}",stream="${stream}"}`), 2);
    }
    assert.equal(sample(`gateway_llm_time_to_first_token_seconds_count{model="${model}",` +
      `backend="${backend}"}`), 2);
  }
  // the usage the clients got: the upstream's numbers (17 + 5 per answer) on the HTTP backend
  assert.equal(sample('gateway_llm_tokens_total{model="up-text",backend="openai",type="prompt"}'), 68);
  assert.equal(sample('gateway_llm_tokens_total{model="up-text",backend="openai",' +
    'type="completion"}'), 20);
  assert.ok(sample('gateway_llm_tokens_total{model="gpt-4o",backend="pieces",type="prompt"}') > 0);
  assert.equal(sample('gateway_llm_active_streams'), 0);
  assert.equal(sample('gateway_http_requests_total{route="count_tokens",method="POST",' +
    'status="200"}'), 2);
});

test('errors made outside the policies are Anthropic-shaped on the Messages paths', async (t) => {
  const gw = await startGateway({ dir: tmpDir(), env: { API_KEY: KEY, MAX_BODY_SIZE: '2000',
    HEADER_TIMEOUT: '0.5' } });
  t.after(() => gw.stop());
  const big = 'x'.repeat(3000);
  const req = (path, method, body) => fetch(`${gw.url}${path}`, { method, body,
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' } });
  const rawOne = async (data, opts) => parseResponses((await raw(gw.port, data, opts)).text)[0];
  const openaiError = async (res, status, code) => {
    assert.equal(res.status, status);
    const b = await res.json();
    assert.equal(b.error.code, code);
    assert.equal(b.type, undefined);
  };
  for (const path of ['/v1/messages', '/v1/messages/count_tokens']) {
    await t.test(`${path}: 405 (worker, routes), 413 (HTTP layer), 408`, async () => {
      await anthropicError(await req(path, 'PUT', '{}'), 405, 'invalid_request_error');
      await anthropicError(await req(path, 'GET'), 405, 'invalid_request_error');
      await anthropicError(await req(path, 'POST', big), 413, 'request_too_large');
      const chunked = await rawOne(`POST ${path} HTTP/1.1\r\nHost: x\r\n`
        + `Transfer-Encoding: chunked\r\n\r\n${(3000).toString(16)}\r\n${big}\r\n0\r\n\r\n`);
      assert.equal(chunked.status, 413);
      assert.equal(JSON.parse(chunked.body).error.type, 'request_too_large');
      const slow = await rawOne([`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n`,
        '{"model":'], { idleMs: 5000 });
      assert.equal(slow.status, 408);
      assert.deepEqual(JSON.parse(slow.body), { type: 'error',
        error: { type: 'invalid_request_error', message: 'Request timeout' } });
    });
  }
  await t.test('the OpenAI paths keep the OpenAI shape', async () => {
    for (const path of ['/v1/chat/completions', '/v1/responses']) {
      await openaiError(await req(path, 'PUT', '{}'), 405, 'method_not_allowed');
      await openaiError(await req(path, 'GET'), 405, 'method_not_allowed');
      await openaiError(await req(path, 'POST', big), 413, 'body_too_large');
    }
    await openaiError(await req('/v1/messages/nope', 'POST', '{}'), 404, 'route_not_found');
  });
});

test('no reachable backend: 503 in each format (Anthropic overloaded_error)', async (t) => {
  const { gw, anthropic } = await setup(t, { pieces: false });
  await anthropicError(await post(gw, '/v1/messages', { model: 'gpt-4o', max_tokens: 8,
    messages: USER }), 503, 'overloaded_error');
  await assert.rejects(anthropic.messages.stream({ model: 'gpt-4o', max_tokens: 8,
    messages: USER }).finalMessage(), (e) => e instanceof Anthropic.InternalServerError
    && e.status === 503 && e.error.error.type === 'overloaded_error');
  const res = await post(gw, '/v1/responses', { model: 'gpt-4o', input: 'hi', stream: true });
  assert.equal(res.status, 503);
  const b = await res.json();
  assert.equal(typeof b.error.message, 'string');
  assert.equal(typeof b.error.code, 'string');
});

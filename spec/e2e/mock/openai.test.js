// pieces-gateway: self-test of the OpenAI-compatible mock (spec/e2e/mock/openai.js).
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// Drives the mock with the official openai client and with raw node:http/http2, so the e2e
// tests of the HTTP backend can trust it: scenarios, recording, close detection, TLS + h2.
// Run: node --test spec/e2e/mock/
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const http2 = require('node:http2');
const OpenAI = require('openai');
const { startOpenAIMock, USAGE } = require('./openai');
const { makeCerts } = require('./certs');

const USER = [{ role: 'user', content: 'hi' }];

function rawPost(url, body, headers = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request(url, { method: 'POST', headers: {
            'content-type': 'application/json', ...headers } }, (res) => {
            let data = '';
            res.on('data', (d) => { data += d; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, data }));
            res.on('error', reject);
        });
        req.on('error', reject);
        req.end(JSON.stringify(body));
    });
}

test('openai mock over plain HTTP/1.1', async (t) => {
    const mock = await startOpenAIMock();
    t.after(() => mock.close());
    const client = new OpenAI({ apiKey: 'sk-mock', baseURL: `${mock.url}/v1`, maxRetries: 0 });

    await t.test('non-stream and stream content, usage, key recorded', async () => {
        const r = await client.chat.completions.create({ model: 'm', messages: USER });
        assert.equal(r.choices[0].message.content, 'Hello, world');
        assert.deepEqual(r.usage, USAGE);
        assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer sk-mock');
        const s = await client.chat.completions.create({ model: 'm', messages: USER, stream: true,
            stream_options: { include_usage: true } });
        let text = '';
        let usage = null;
        for await (const c of s) {
            text += c.choices[0]?.delta?.content || '';
            if (c.usage) usage = c.usage;
        }
        assert.equal(text, 'Hello, world');
        assert.deepEqual(usage, USAGE);
    });

    await t.test('tool call deltas reassemble', async () => {
        const s = await client.chat.completions.create({ model: 'tools', messages: USER,
            stream: true });
        let args = '';
        let finish = null;
        for await (const c of s) {
            const tc = c.choices[0]?.delta?.tool_calls;
            if (tc) args += tc[0].function.arguments || '';
            finish = c.choices[0]?.finish_reason || finish;
        }
        assert.deepEqual(JSON.parse(args), { city: 'Paris' });
        assert.equal(finish, 'tool_calls');
    });

    await t.test('faults', async () => {
        const e = await rawPost(`${mock.url}/v1/chat/completions`, { model: 'status-429' });
        assert.equal(e.status, 429);
        assert.equal(e.headers['retry-after'], '7');
        await assert.rejects(rawPost(`${mock.url}/v1/chat/completions`, { model: 'reset' }));
        const m = await rawPost(`${mock.url}/v1/chat/completions`, { model: 'malformed',
            stream: true });
        assert.match(m.data, /data: \{"choices": \[\{"delta": \n\n$/);
    });

    await t.test('a client that goes away is recorded', async () => {
        const ac = new AbortController();
        const s = await client.chat.completions.create({ model: 'stall', messages: USER,
            stream: true }, { signal: ac.signal });
        const it = s[Symbol.asyncIterator]();
        await it.next();
        ac.abort();
        await mock.waitFor(() => mock.closes.length === 1, 2000);
    });

    await t.test('big stream stops when the reader does not read', async () => {
        const req = http.request(`${mock.url}/v1/chat/completions`, { method: 'POST' });
        req.end(JSON.stringify({ model: 'big', stream: true }));
        const res = await new Promise((r) => req.on('response', r));
        res.pause();
        await new Promise((r) => setTimeout(r, 300));
        const id = mock.requests.at(-1).id;
        assert.ok(mock.progress[id] < 8 * 1024 * 1024, `paused at ${mock.progress[id]}`);
        res.destroy();
    });
});

test('openai mock over TLS: h2 by ALPN, HTTP/1.1 otherwise', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-oai-mock-'));
    const certs = makeCerts(dir);
    const mock = await startOpenAIMock({ tls: { cert: certs.cert, key: certs.key } });
    t.after(() => mock.close());
    const ca = fs.readFileSync(certs.ca);
    const session = http2.connect(mock.url, { ca });
    t.after(() => session.close());
    const data = await new Promise((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': '/v1/chat/completions',
            'content-type': 'application/json' });
        let d = '';
        s.on('data', (x) => { d += x; });
        s.on('end', () => resolve(d));
        s.on('error', reject);
        s.end(JSON.stringify({ model: 'm', messages: USER }));
    });
    assert.equal(JSON.parse(data).choices[0].message.content, 'Hello, world');
    assert.equal(mock.requests.at(-1).http, '2.0');
});

#!/usr/bin/env node
// pieces-gateway: a mock OpenAI-compatible chat completions server on Node's own http/http2.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
//
// Independent of the gateway's HTTP client: Node's http (HTTP/1.1, keep-alive) in plaintext,
// http2.createSecureServer with allowHTTP1 over TLS (ALPN h2 and http/1.1; h2: false gives an
// HTTP/1.1-only TLS server).
//
//   const { startOpenAIMock } = require('./openai');
//   const mock = await startOpenAIMock({ tls: { cert, key } | null, h2: true, port: 0 });
//   mock.url            // "http://127.0.0.1:PORT" or "https://localhost:PORT"
//   mock.requests       // [{id, method, path, headers, body, raw, http, t}] (body: parsed JSON)
//   mock.closes         // [{id, t, model}] the client went away before the answer was complete
//                       // (HTTP/1.1: closed the connection; h2: reset the stream or closed)
//   mock.connections    // TCP connections accepted so far (keep-alive checks)
//   mock.progress       // {id: bytes written} of the answers being sent
//   mock.on((rec, ctx) => ...)  // answer every request with this handler instead of the
//                               // scenario named by the model (see SCENARIOS)
//   await mock.waitFor(() => mock.closes.length > 0, 2000);  mock.reset();  await mock.close();
//
// Scenarios by the request's model name (anything else: "Hello, world" in three chunks):
//   tools        a get_weather tool call, arguments streamed in pieces; finish tool_calls
//   length, content-filter   finish_reason length / content_filter
//   refusal      a refusal instead of content       n2        two choices (n = 2)
//   no-usage     never sends usage (even when stream_options.include_usage asks)
//   status-NNN   HTTP NNN with an OpenAI error body (429 adds Retry-After: 7)
//   malformed    stream: one good chunk, then broken JSON; non-stream: a body that is not JSON
//   reset        stream: two chunks, then the connection is destroyed; non-stream: destroyed
//   stall        stream: headers, the role chunk and one text chunk ("Hello"), then nothing (so
//                a client has seen text before the stall); non-stream: never answers
//   slow-headers answer headers after x-mock-delay ms (default 300), then as usual
//   error-mid    stream: one chunk, then an error object
//   split        the usual answer written in small pieces, CRLF lines, ": ping" comments
//   big          x-mock-total bytes (default 50 MB) of "lorem ipsum " in 16 KiB events, honouring
//                backpressure (the writer waits for 'drain')
//   chunks       x-mock-chunks chunks (default 20) "c0 ".."cN-1 ", x-mock-gap ms apart
//                (default 0); chunks-N-G: N chunks G ms apart (benchmarks)
// Usage numbers are the mock's own ({17, 5, 22}), so a test can tell them from the gateway's.
//
// Standalone (C integration tests, benchmarks):
//   node spec/e2e/mock/openai.js --port N [--tls-port M --tls-dir D] [--blackhole-port B]
//        [--host H]
//   --blackhole-port: a TCP server that accepts and never sends a byte (connect timeouts)
//   prints "READY port=N tls=M blackhole=B" once listening; SIGTERM stops it.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const http2 = require('node:http2');
const https = require('node:https');
const path = require('node:path');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const USAGE = { prompt_tokens: 17, completion_tokens: 5, total_tokens: 22 };
const CREATED = 1700000000;

function chunk(model, choices, extra = {}) {
    return { id: 'chatcmpl-upstream', object: 'chat.completion.chunk', created: CREATED,
        model: `${model}-upstream`, system_fingerprint: 'fp_mock', choices, ...extra };
}

function delta(d, finish = null, index = 0) {
    return { index, delta: d, logprobs: null, finish_reason: finish };
}

const TOOL_ARGS = ['{"ci', 'ty": "Pa', 'ris"}'];

// The stream of one scenario as an array of chunk objects (without usage and [DONE]).
function streamChunks(model, body) {
    const m = model;
    if (m === 'tools') {
        return [
            chunk(m, [delta({ role: 'assistant', content: null, tool_calls: [{ index: 0,
                id: 'call_mock1', type: 'function', function: { name: 'get_weather',
                    arguments: '' } }] })]),
            ...TOOL_ARGS.map((a) => chunk(m, [delta({ tool_calls: [{ index: 0,
                function: { arguments: a } }] })])),
            chunk(m, [delta({}, 'tool_calls')]),
        ];
    }
    if (m === 'refusal') {
        return [chunk(m, [delta({ role: 'assistant', content: null, refusal: '' })]),
            chunk(m, [delta({ refusal: "I can't help" })]),
            chunk(m, [delta({ refusal: ' with that.' })]),
            chunk(m, [delta({}, 'stop')])];
    }
    if (m === 'n2') {
        return [chunk(m, [delta({ role: 'assistant', content: 'One' }, null, 0)]),
            chunk(m, [delta({ role: 'assistant', content: 'Two' }, null, 1)]),
            chunk(m, [delta({}, 'stop', 0)]), chunk(m, [delta({}, 'length', 1)])];
    }
    if (m === 'chunks' || /^chunks-\d+-\d+$/.test(m)) {
        const n = Number(body._chunks || 20);
        const out = [chunk(m, [delta({ role: 'assistant', content: '' })])];
        for (let i = 0; i < n; i++) out.push(chunk(m, [delta({ content: `c${i} ` })]));
        out.push(chunk(m, [delta({}, 'stop')]));
        return out;
    }
    const finish = m === 'length' ? 'length' : m === 'content-filter' ? 'content_filter' : 'stop';
    return [chunk(m, [delta({ role: 'assistant', content: '' })]),
        ...['Hello', ',', ' world'].map((t) => chunk(m, [delta({ content: t })])),
        chunk(m, [delta({}, finish)])];
}

// The non-stream answer of one scenario.
function answer(model) {
    const m = model;
    const msg = { role: 'assistant', content: 'Hello, world', refusal: null };
    let finish = 'stop';
    const choices = [];
    if (m === 'tools') {
        msg.content = null;
        msg.tool_calls = [{ id: 'call_mock1', type: 'function',
            function: { name: 'get_weather', arguments: TOOL_ARGS.join('') } }];
        finish = 'tool_calls';
    } else if (m === 'refusal') {
        msg.content = null;
        msg.refusal = "I can't help with that.";
    } else if (m === 'length') {
        finish = 'length';
    } else if (m === 'content-filter') {
        finish = 'content_filter';
    }
    choices.push({ index: 0, message: msg, logprobs: null, finish_reason: finish });
    if (m === 'n2') {
        choices[0].message.content = 'One';
        choices.push({ index: 1, message: { role: 'assistant', content: 'Two', refusal: null },
            logprobs: null, finish_reason: 'length' });
    }
    const out = { id: 'chatcmpl-upstream', object: 'chat.completion', created: CREATED,
        model: `${m}-upstream`, system_fingerprint: 'fp_mock', choices };
    if (m !== 'no-usage') out.usage = USAGE;
    return out;
}

const sse = (obj) => `data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`;

class Ctx {
    constructor(mock, rec, req, res) {
        Object.assign(this, { mock, rec, req, res });
        this.closed = false;
        this.destroyed = false; // the mock itself reset the stream / dropped the connection
        this.sent = 0;
        res.on('close', () => {
            this.closed = true;
            // http2: the stream closed with an error code (the client's RST_STREAM, or its
            // connection gone); the compat response says "finished" then, so it cannot tell.
            // HTTP/1.1: the socket closed before the answer was written.
            const s = req.stream;
            const gone = s ? s.rstCode !== http2.constants.NGHTTP2_NO_ERROR
                : !res.writableFinished;
            if (gone && !this.destroyed) {
                mock.closes.push({ id: rec.id, t: Date.now(), model: rec.body && rec.body.model });
            }
        });
    }

    header(name, dflt) {
        const v = this.rec.headers[name];
        return v === undefined ? dflt : Number(v);
    }

    head(status = 200, type = 'text/event-stream', extra = {}) {
        if (this.res.headersSent || this.closed) return;
        this.res.writeHead(status, { 'content-type': type, ...extra });
    }

    // Writes, waiting for 'drain' when the socket is full (so a paused reader stops the mock).
    async write(s) {
        if (this.closed) return false;
        this.sent += Buffer.byteLength(s);
        this.mock.progress[this.rec.id] = this.sent;
        if (this.res.write(s)) return true;
        await new Promise((resolve) => {
            const done = () => { this.res.off('drain', done); this.res.off('close', done); resolve(); };
            this.res.on('drain', done);
            this.res.on('close', done);
        });
        return !this.closed;
    }

    end(s) {
        if (!this.closed) this.res.end(s);
    }

    json(status, obj, extra = {}) {
        const s = typeof obj === 'string' ? obj : JSON.stringify(obj);
        this.head(status, 'application/json', extra);
        this.end(s);
    }

    error(status, message, extra = {}) {
        this.json(status, { error: { message, type: status === 429 ? 'rate_limit_error'
            : 'invalid_request_error', param: null, code: `mock_${status}` } }, extra);
    }

    destroy() {
        this.destroyed = true;
        const s = this.req.stream; // http2: reset the stream; HTTP/1.1: drop the socket
        if (s && typeof s.close === 'function') s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        else this.req.socket.destroy();
    }
}

// Runs the scenario named by the model.
async function scenario(ctx) {
    const body = ctx.rec.body;
    if (!body || typeof body !== 'object') return ctx.error(400, 'body is not a JSON object');
    const model = String(body.model || '');
    const stream = body.stream === true;
    const status = /^status-(\d{3})$/.exec(model);
    if (status) {
        const st = Number(status[1]);
        return ctx.error(st, `mock error ${st}`, st === 429 ? { 'retry-after': '7' } : {});
    }
    if (model === 'slow-headers') await sleep(ctx.header('x-mock-delay', 300));
    if (!stream) {
        if (model === 'stall') return undefined;
        if (model === 'reset') return ctx.destroy();
        if (model === 'malformed') return ctx.json(200, '{"id": "x", "choices": [ {');
        return ctx.json(200, answer(model));
    }
    if (model === 'big') return bigStream(ctx, model);
    const named = /^chunks-(\d+)-(\d+)$/.exec(model);
    body._chunks = named ? Number(named[1]) : ctx.header('x-mock-chunks', 20);
    const chunks = streamChunks(model, body);
    const gap = named ? Number(named[2]) : ctx.header('x-mock-gap', 0);
    const wantUsage = body.stream_options && body.stream_options.include_usage === true &&
        model !== 'no-usage';
    ctx.head();
    for (let i = 0; i < chunks.length; i++) {
        if (ctx.closed) return undefined;
        if (model === 'stall' && i === 2) return undefined;
        if (model === 'reset' && i === 2) return sleep(50).then(() => ctx.destroy());
        if (model === 'malformed' && i === 1) return ctx.end('data: {"choices": [{"delta": \n\n');
        if (model === 'error-mid' && i === 1) {
            return ctx.end(sse({ error: { message: 'The server is overloaded', type: 'server_error',
                code: 'overloaded' } }));
        }
        const ev = sse(chunks[i]);
        if (model === 'split') await writeSplit(ctx, ev);
        else await ctx.write(ev);
        if (gap) await sleep(gap);
    }
    const tail = (wantUsage ? sse(chunk(model, [], { usage: USAGE })) : '') + sse('[DONE]');
    if (model === 'split') await writeSplit(ctx, tail);
    else await ctx.write(tail);
    return ctx.end();
}

// The same bytes in pieces of 1..7 bytes, lines ending in CRLF, a comment before each event.
async function writeSplit(ctx, ev) {
    const text = `: ping\r\n${ev.replace(/\n/g, '\r\n')}`;
    for (let i = 0, k = 1; i < text.length; i += k, k = (k % 7) + 1) {
        await ctx.write(text.slice(i, i + k));
        if (k === 7) await sleep(1);
    }
}

async function bigStream(ctx, model) {
    const total = ctx.header('x-mock-total', 50 * 1024 * 1024);
    // text with piece boundaries, like real output (the tokenizer keeps an unfinished piece)
    const piece = sse(chunk(model, [delta({ content: 'lorem ipsum '.repeat(1366).slice(0, 16384) })]));
    ctx.head();
    await ctx.write(sse(chunk(model, [delta({ role: 'assistant', content: '' })])));
    let content = 0;
    while (content < total) {
        if (!(await ctx.write(piece))) return;
        content += 16384;
    }
    await ctx.write(sse(chunk(model, [delta({}, 'stop')])) + sse('[DONE]'));
    ctx.end();
}

class OpenAIMock {
    constructor(opts) {
        this.opts = opts;
        this.requests = [];
        this.closes = [];
        this.progress = {};
        this.connections = 0;
        this.nextId = 1;
        this.handler = null;
    }

    on(fn) {
        this.handler = fn;
        return this;
    }

    reset() {
        this.requests.length = 0;
        this.closes.length = 0;
        this.progress = {};
        this.handler = null;
    }

    async waitFor(pred, timeoutMs = 5000) {
        const end = Date.now() + timeoutMs;
        while (!pred()) {
            if (Date.now() > end) throw new Error('openai mock: waitFor timed out');
            await sleep(5);
        }
    }

    onRequest(req, res) {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('error', () => {});
        res.on('error', () => {});
        req.on('end', () => {
            const raw = Buffer.concat(parts).toString('utf8');
            let body = null;
            try { body = raw ? JSON.parse(raw) : null; } catch (e) { body = null; }
            const rec = { id: this.nextId++, method: req.method, path: req.url,
                headers: { ...req.headers }, body, raw, http: req.httpVersion, t: Date.now() };
            this.requests.push(rec);
            const ctx = new Ctx(this, rec, req, res);
            if (req.method === 'GET' && /\/models$/.test(req.url)) {
                return ctx.json(200, { object: 'list', data: [] });
            }
            if (req.method !== 'POST' || !/\/chat\/completions$/.test(req.url)) {
                return ctx.error(404, `no route ${req.method} ${req.url}`);
            }
            const run = this.handler ? this.handler(rec, ctx) : scenario(ctx);
            return Promise.resolve(run).catch((e) => {
                if (!res.headersSent) ctx.error(500, `mock handler failed: ${e.message}`);
                else ctx.destroy();
            });
        });
    }

    async listen() {
        const o = this.opts;
        const onReq = (req, res) => this.onRequest(req, res);
        if (o.tls && o.h2 !== false) {
            this.server = http2.createSecureServer({ cert: fs.readFileSync(o.tls.cert),
                key: fs.readFileSync(o.tls.key), allowHTTP1: true }, onReq);
        } else if (o.tls) {
            this.server = https.createServer({ cert: fs.readFileSync(o.tls.cert),
                key: fs.readFileSync(o.tls.key) }, onReq);
        } else {
            this.server = http.createServer(onReq);
        }
        this.sockets = new Set();
        const ev = o.tls ? 'secureConnection' : 'connection';
        this.server.on(ev, (s) => {
            this.connections++;
            this.sockets.add(s);
            s.on('close', () => this.sockets.delete(s));
        });
        this.server.on('sessionError', () => {});
        this.server.on('clientError', (e, s) => s.destroy());
        if (this.server.keepAliveTimeout !== undefined) this.server.keepAliveTimeout = 30000;
        await new Promise((resolve, reject) => {
            this.server.once('error', reject);
            this.server.listen(o.port || 0, o.host || '127.0.0.1', resolve);
        });
        this.port = this.server.address().port;
        const host = o.tls ? 'localhost' : (o.host || '127.0.0.1');
        this.url = `${o.tls ? 'https' : 'http'}://${host}:${this.port}`;
        return this;
    }

    close() {
        for (const s of this.sockets) s.destroy();
        return new Promise((resolve) => this.server.close(() => resolve()));
    }
}

function startOpenAIMock(opts = {}) {
    return new OpenAIMock(opts).listen();
}

module.exports = { startOpenAIMock, USAGE };

async function main() {
    const a = {};
    for (let i = 2; i < process.argv.length; i += 2) a[process.argv[i].slice(2)] = process.argv[i + 1];
    const host = a.host || '127.0.0.1';
    const out = [];
    const servers = [];
    if (a.port !== undefined) {
        const m = await startOpenAIMock({ port: Number(a.port), host });
        servers.push(m);
        out.push(`port=${m.port}`);
    }
    if (a['tls-port'] !== undefined) {
        const dir = a['tls-dir'];
        if (!fs.existsSync(path.join(dir, 'server.pem'))) require('./certs').makeCerts(dir);
        const m = await startOpenAIMock({ port: Number(a['tls-port']), host,
            tls: { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') } });
        servers.push(m);
        out.push(`tls=${m.port}`);
    }
    if (a['blackhole-port'] !== undefined) {
        const held = new Set();
        const bh = require('node:net').createServer((sock) => {
            held.add(sock);
            sock.on('error', () => {});
            sock.on('close', () => held.delete(sock));
        });
        await new Promise((r) => bh.listen(Number(a['blackhole-port']), host, r));
        servers.push({ close: () => { for (const x of held) x.destroy(); bh.close(); } });
        out.push(`blackhole=${bh.address().port}`);
    }
    process.stdout.write(`READY ${out.join(' ')}\n`);
    const stop = async () => {
        await Promise.all(servers.map((s) => s.close()));
        process.exit(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

if (require.main === module) main();

// pieces-gateway: a scriptable mock of the Pieces OS inference services on @grpc/grpc-js.
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// An independent gRPC implementation (grpc-js over Node's http2) serving GPTInferenceService
// and VertexInferenceService from the real proto/*.proto files, over h2c or TLS.
//
//   const { startMock } = require('./mock');
//   const mock = await startMock({ tls: { cert, key } | null, port: 0, maxStreams: 100 });
//   mock.on('gpt', script | async (call, ctx) => {...});   // or 'vertex'; default: by model
//   mock.address            // "127.0.0.1:PORT"
//   mock.requests           // [{id, service, method, model, request, headers, metadata, t}]
//   mock.cancellations      // [{id, service, model, t}]
//   mock.events             // everything above plus progress/goaway, in order
//   await mock.waitFor(() => mock.cancellations.length > 0, 2000);
//   mock.goawayAll();  await mock.close();
//
// A script is an array of steps, run in order for each call (see scripts.js):
//   {text, code=200, delay}  one Response frame   {code: 204}  the end frame (text optional)
//   {delay}                  sleep                {error: {code, details}}  end with a status
//                                                  (trailers-only when nothing was sent yet)
//   {rst: 2}                 RST_STREAM with that HTTP/2 code (2 = INTERNAL_ERROR)
//   {goaway: true}           graceful GOAWAY on this call's connection (the call continues)
//   {hang: true}             never answer          {big: {total, chunk}}  stream total bytes
//                                                  of text in chunk-sized frames, honouring
//                                                  flow control (slow-reader tests)
// A script that runs out ends the call with status OK. Unary Predict answers with one
// Response whose text is the concatenation of the script's texts and whose code is the
// first code in the script (errors, rst, hang and delays apply as in streams).
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const http2 = require('node:http2');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { scriptForModel } = require('./scripts');

const PROTO_DIR = path.resolve(__dirname, '../../../proto');
const LOADER_OPTS = { keepCase: true, longs: Number, enums: String, defaults: true };

function loadServices() {
    const gpt = protoLoader.loadSync(path.join(PROTO_DIR, 'gpt.proto'), LOADER_OPTS);
    const vertex = protoLoader.loadSync(path.join(PROTO_DIR, 'vertex.proto'), LOADER_OPTS);
    const g = grpc.loadPackageDefinition(gpt).runtime.aot.machine_learning.parents;
    const v = grpc.loadPackageDefinition(vertex).runtime.aot.machine_learning.parents;
    return { gpt: g.gpt.GPTInferenceService.service, vertex: v.vertex.VertexInferenceService.service };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The http2 stream under a grpc-js server call (grpc-js keeps it a few objects down).
function streamOf(call) {
    let c = call && call.call;
    for (let i = 0; c && i < 8; i++) {
        if (c.stream && typeof c.stream.close === 'function') return c.stream;
        c = c.nextCall;
    }
    return null;
}

function frame(service, code, text) {
    if (service === 'gpt') {
        const r = { response_code: code };
        if (text !== undefined) {
            r.body = {
                id: 'chatcmpl-mock', object: 'chat.completion',
                time: Math.floor(Date.now() / 1000),
                message_warpper: { arg1: 1, message: { role: 1, message: text } },
            };
        }
        return r;
    }
    const r = { response_code: code };
    if (text !== undefined) r.args = { args: { args: { unknown: 3, message: text } } };
    return r;
}

class Mock {
    constructor(opts) {
        this.opts = opts;
        this.handlers = {};
        this.requests = [];
        this.cancellations = [];
        this.events = [];
        this.nextId = 1;
        this.streamHeaders = new WeakMap();
        this.logStream = opts.eventsFile ? fs.createWriteStream(opts.eventsFile, { flags: 'a' }) : null;
    }

    record(ev) {
        ev.t = Date.now();
        this.events.push(ev);
        if (this.logStream) this.logStream.write(JSON.stringify(ev) + '\n');
        if (this.opts.onEvent) this.opts.onEvent(ev);
        return ev;
    }

    on(service, handler) {
        this.handlers[service] = handler;
        return this;
    }

    reset() {
        this.requests.length = 0;
        this.cancellations.length = 0;
        this.events.length = 0;
        this.handlers = {};
    }

    async waitFor(pred, timeoutMs = 5000) {
        const end = Date.now() + timeoutMs;
        while (!pred()) {
            if (Date.now() > end) throw new Error('mock.waitFor: timed out');
            await sleep(10);
        }
    }

    goawayAll() {
        for (const s of this.server.sessions.keys()) s.close();
    }

    handle(service, method, call, callback) {
        const stream = streamOf(call);
        const req = call.request || {};
        const rec = this.record({
            event: 'request', id: this.nextId++, service, method, model: req.models || '',
            request: req, headers: stream ? { ...(this.streamHeaders.get(stream) || {}) } : {},
            metadata: call.metadata.getMap(),
        });
        this.requests.push(rec);
        const ctx = new CallCtx(this, service, method, call, callback, stream, rec);
        call.on('cancelled', () => {
            if (ctx.done) return;
            ctx.cancelled = true;
            this.cancellations.push(this.record({ event: 'cancel', id: rec.id, service, model: rec.model }));
        });
        const h = this.handlers[service] || this.handlers['*'];
        const run = typeof h === 'function' ? h(call, ctx)
            : ctx.runScript(Array.isArray(h) ? h : scriptForModel(rec.model));
        Promise.resolve(run).catch((e) => ctx.error(13, `mock handler failed: ${e.message}`));
    }
}

// Per-call helpers, also given to handler functions.
class CallCtx {
    constructor(mock, service, method, call, callback, stream, rec) {
        Object.assign(this, { mock, service, method, call, callback, stream, rec });
        this.done = false;
        this.cancelled = false;
        this.unaryText = undefined;
        this.unaryCode = undefined;
        this.sentBytes = 0;
    }

    get unary() { return this.method === 'Predict'; }

    send(code, text) {
        if (this.done || this.cancelled) return true;
        if (this.unary) {
            if (this.unaryCode === undefined) this.unaryCode = code;
            if (text !== undefined) this.unaryText = (this.unaryText || '') + text;
            return true;
        }
        this.sentBytes += text ? Buffer.byteLength(text) : 0;
        return this.call.write(frame(this.service, code, text));
    }

    end() {
        if (this.done || this.cancelled) return;
        this.done = true;
        if (this.unary) this.callback(null, frame(this.service, this.unaryCode ?? 200, this.unaryText));
        else this.call.end();
    }

    error(code, details) {
        if (this.done || this.cancelled) return;
        this.done = true;
        const err = { code, details: details || '' };
        if (this.unary) this.callback(err);
        else this.call.emit('error', err);
    }

    rst(code) {
        if (this.done) return;
        this.done = true;
        if (this.stream) this.stream.close(code);
    }

    goaway() {
        this.mock.record({ event: 'goaway', id: this.rec.id });
        if (this.stream && this.stream.session) this.stream.session.close();
    }

    async drain() {
        if (this.unary) return;
        await new Promise((r) => {
            const done = () => { this.call.off('drain', done); this.call.off('cancelled', done); r(); };
            this.call.once('drain', done);
            this.call.once('cancelled', done);
        });
    }

    async big({ total, chunk = 16384, pattern = 'x' }) {
        const piece = pattern.repeat(Math.ceil(chunk / pattern.length)).slice(0, chunk);
        let sent = 0, nextMark = 1 << 20;
        while (sent < total && !this.cancelled && !this.done) {
            const n = Math.min(chunk, total - sent);
            const ok = this.send(200, n === chunk ? piece : piece.slice(0, n));
            sent += n;
            if (sent >= nextMark) {
                this.mock.record({ event: 'progress', id: this.rec.id, bytes: sent });
                nextMark += 1 <<20;
            }
            if (!ok) await this.drain();
        }
        this.mock.record({ event: 'progress', id: this.rec.id, bytes: sent, final: true });
    }

    async runScript(steps) {
        for (const s of steps) {
            if (this.done || this.cancelled) return;
            if (s.delay) await sleep(s.delay);
            if (this.done || this.cancelled) return;
            if (s.hang) return;
            if (s.error) return this.error(s.error.code, s.error.details);
            if (s.rst !== undefined) return this.rst(s.rst);
            if (s.goaway) { this.goaway(); continue; }
            if (s.big) { await this.big(s.big); continue; }
            if (s.text !== undefined || s.code !== undefined) {
                if (!this.send(s.code ?? 200, s.text)) await this.drain();
            }
        }
        this.end();
    }
}

async function startMock(opts = {}) {
    const mock = new Mock(opts);
    const services = loadServices();
    const serverOpts = {};
    if (opts.maxStreams) serverOpts['grpc.max_concurrent_streams'] = opts.maxStreams;
    const server = new grpc.Server(serverOpts);
    mock.server = server;
    for (const svc of ['gpt', 'vertex']) {
        server.addService(services[svc], {
            Predict: (call, cb) => mock.handle(svc, 'Predict', call, cb),
            PredictWithStream: (call) => mock.handle(svc, 'PredictWithStream', call, null),
        });
    }
    const creds = opts.tls
        ? grpc.ServerCredentials.createSsl(null, [{
            private_key: fs.readFileSync(opts.tls.key), cert_chain: fs.readFileSync(opts.tls.cert),
        }], false)
        : grpc.ServerCredentials.createInsecure();
    const host = opts.host || '127.0.0.1';
    const port = await new Promise((resolve, reject) => {
        server.bindAsync(`${host}:${opts.port || 0}`, creds, (err, p) => (err ? reject(err) : resolve(p)));
    });
    // Raw request headers (user-agent, te, grpc-timeout, :authority...) as seen on the wire.
    for (const h2 of server.http2Servers.keys()) {
        h2.on('stream', (stream, headers) => mock.streamHeaders.set(stream, headers));
    }
    mock.port = port;
    mock.address = `${host}:${port}`;
    mock.close = () => new Promise((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => { server.forceShutdown(); resolve(); }, 1000).unref();
    });
    return mock;
}

module.exports = { startMock, frame, streamOf, http2Constants: http2.constants };

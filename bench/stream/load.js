#!/usr/bin/env node
// pieces-gateway: closed-loop streaming load client of bench/stream.sh.
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// node bench/stream/load.js --mode gw|grpc --port P --conc C --duration S --model M
//      [--chunks 20] [--pid PID --clk-tck 100 --sample-ms 50] [--timeout S] [--streams N]
//
//   gw    C keep-alive HTTP/1.1 connections (raw net sockets, opened before the clock starts),
//         each looping POST /v1/chat/completions {"stream": true} for S seconds. TTFB is the
//         time from the request write to the first "data:" byte of the body. A stream counts
//         as good when it is a 200, chunked, has exactly --chunks content deltas "c0 ".."cN-1 "
//         in order and ends with "data: [DONE]".
//   grpc  the same against the mock directly: one grpc-js channel, C concurrent
//         PredictWithStream calls in a loop; TTFB is the time from the call to the first
//         message. Good: --chunks 200 frames with the right texts, one 204 frame, status OK.
// With --streams N, exactly N streams are started (spread over the C loops) and the run ends
// when the last one ended, whatever --duration says: a fixed amount of work for counting the
// target's instructions and system calls (bench/counts.sh).
// With --pid, the target's utime+stime (/proc/PID/stat, all threads) is read at the start and
// after the last stream ended, and its VmRSS (/proc/PID/status) every --sample-ms during the
// run (peak kept, with the number of streams open at that moment).
// Prints one JSON line with the results.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');

function parseArgs(argv) {
    const a = {};
    for (let i = 2; i < argv.length; i += 2) {
        if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
        a[argv[i].slice(2)] = argv[i + 1];
    }
    return a;
}

const args = parseArgs(process.argv);
const MODE = args.mode || 'gw';
const PORT = Number(args.port);
const CONC = Number(args.conc || 50);
const DURATION = Number(args.duration || 5);
const MODEL = args.model || 'gpt-4o-mini';
const CHUNKS = Number(args.chunks || 20);
const PID = args.pid ? Number(args.pid) : 0;
const CLK_TCK = Number(args['clk-tck'] || 100);
const SAMPLE_MS = Number(args['sample-ms'] || 50);
const TIMEOUT = Number(args.timeout || 60);
const STREAMS = Number(args.streams || 0);
const MESSAGES = [{ role: 'user', content: 'hi' }];
// --ingress chat (default) | messages | responses: the client API of gw mode (bench/ingress.sh)
const INGRESS = args.ingress || 'chat';
const INGRESS_SHAPES = {
    chat: { path: '/v1/chat/completions', body: { model: MODEL, messages: MESSAGES, stream: true },
        re: /"delta":\{(?:"role":"assistant",)?"content":"c(\d+) "\}/g, end: 'data: [DONE]\n\n' },
    messages: { path: '/v1/messages',
        body: { model: MODEL, max_tokens: 1024, messages: MESSAGES, stream: true },
        re: /"text_delta","text":"c(\d+) "/g,
        end: 'event: message_stop\ndata: {"type":"message_stop"}\n\n' },
    responses: { path: '/v1/responses', body: { model: MODEL, input: 'hi', stream: true },
        re: /"content_index":0,"delta":"c(\d+) "/g, end: '"total_tokens":' },
};
const SHAPE = INGRESS_SHAPES[INGRESS];
if (!SHAPE) throw new Error(`unknown --ingress ${INGRESS}`);

const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

// ---- results -------------------------------------------------------------------------------
let ttfb = new Float64Array(1 << 16);
let nTtfb = 0;
let good = 0;
let failures = 0;
const failSamples = new Map(); // reason -> count
let open = 0;
let openMax = 0;
let started = 0;

// May a loop start another stream? (the clock, or the --streams budget)
function another(stopAt) {
    if (STREAMS) {
        if (started >= STREAMS) return false;
        started++;
        return true;
    }
    return now() < stopAt;
}

function recordTtfb(ms) {
    if (nTtfb === ttfb.length) {
        const t = new Float64Array(ttfb.length * 2);
        t.set(ttfb);
        ttfb = t;
    }
    ttfb[nTtfb++] = ms;
}

function fail(reason) {
    failures++;
    const r = String(reason).slice(0, 160);
    failSamples.set(r, (failSamples.get(r) || 0) + 1);
}

function pct(sorted, p) {
    if (sorted.length === 0) return null;
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

// ---- target process counters ---------------------------------------------------------------
function cpuTicks(pid) {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
}

// [VmRSS, RssAnon] in kB
function rssKb(pid) {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = /VmRSS:\s+(\d+)/.exec(s);
    const a = /RssAnon:\s+(\d+)/.exec(s);
    return [m ? Number(m[1]) : 0, a ? Number(a[1]) : 0];
}

// /proc/PID/task/*/schedstat summed: [ns on a CPU, ns runnable but waiting for a CPU (other
// programs, softirqs)]. The first is the ns-resolution twin of utime+stime.
function schedNs(pid) {
    let run = 0, wait = 0;
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
        try {
            const f = fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'latin1').split(' ');
            run += Number(f[0]);
            wait += Number(f[1]);
        } catch { /* thread gone */ }
    }
    return [run, wait];
}

// ---- gw mode: raw HTTP/1.1 over net ---------------------------------------------------------
const CONTENT_RE = SHAPE.re;

function checkSse(body) {
    let n = 0;
    let m;
    CONTENT_RE.lastIndex = 0;
    while ((m = CONTENT_RE.exec(body)) !== null) {
        if (Number(m[1]) !== n) return `content delta ${n} is "c${m[1]} "`;
        n++;
    }
    if (n !== CHUNKS) return `${n} content chunks, not ${CHUNKS}`;
    const tail = INGRESS === 'responses' ? body.lastIndexOf('event: response.completed\n') > 0
        && body.includes(SHAPE.end, body.length - 400) : body.endsWith(SHAPE.end);
    if (!tail) return `not the ${INGRESS} stream end: ...${JSON.stringify(body.slice(-120))}`;
    return null;
}

class HttpConn {
    constructor(port, reqBuf) {
        this.port = port;
        this.reqBuf = reqBuf;
        this.sock = null;
        this.pending = null; // {resolve}
    }

    connect() {
        return new Promise((resolve, reject) => {
            const s = net.connect({ port: this.port, host: '127.0.0.1' });
            s.setNoDelay(true);
            s.once('connect', () => { s.off('error', reject); resolve(); });
            s.once('error', reject);
            s.on('data', (d) => { if (s === this.sock) this.onData(d); });
            s.on('error', (e) => { if (s === this.sock) this.finish(`socket error: ${e.code || e.message}`, true); });
            s.on('close', () => { if (s === this.sock) this.finish('connection closed mid-response', true); });
            this.sock = s;
        });
    }

    // one stream: resolves when it ended (good or not)
    request() {
        return new Promise((resolve) => {
            this.pending = { resolve };
            this.buf = '';
            this.state = 0; // 0 head, 1 chunk size, 2 chunk data, 3 content-length body
            this.body = '';
            this.need = 0;
            this.firstAt = 0;
            this.status = 0;
            this.t0 = now();
            this.sock.write(this.reqBuf);
        });
    }

    finish(err, dead) {
        const p = this.pending;
        if (dead) this.dead = true;
        if (!p) return;
        this.pending = null;
        if (err) fail(err);
        else {
            good++;
            recordTtfb(this.firstAt - this.t0);
        }
        p.resolve();
    }

    onData(d) {
        if (!this.pending) return;
        this.buf += d.toString('latin1');
        for (;;) {
            if (this.state === 0) {
                const i = this.buf.indexOf('\r\n\r\n');
                if (i < 0) return;
                const head = this.buf.slice(0, i);
                this.buf = this.buf.slice(i + 4);
                this.status = Number(head.slice(9, 12));
                if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) this.state = 1;
                else {
                    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
                    this.need = m ? Number(m[1]) : 0;
                    this.state = 3;
                }
            } else if (this.state === 1) {
                const i = this.buf.indexOf('\r\n');
                if (i < 0) return;
                this.need = parseInt(this.buf.slice(0, i), 16);
                this.buf = this.buf.slice(i + 2);
                if (this.need === 0) {
                    if (this.buf.length < 2) { this.state = 4; return; }
                    this.buf = this.buf.slice(2);
                    return this.complete();
                }
                this.state = 2;
            } else if (this.state === 2) {
                if (this.buf.length < this.need + 2) return;
                if (!this.firstAt) this.firstAt = now();
                this.body += this.buf.slice(0, this.need);
                this.buf = this.buf.slice(this.need + 2);
                this.state = 1;
            } else if (this.state === 3) {
                if (this.buf.length < this.need) return;
                this.body = this.buf.slice(0, this.need);
                this.buf = '';
                return this.complete();
            } else if (this.state === 4) { // waiting for the CRLF after the last chunk
                if (this.buf.length < 2) return;
                this.buf = this.buf.slice(2);
                return this.complete();
            }
        }
    }

    complete() {
        if (this.status !== 200) return this.finish(`HTTP ${this.status}: ${this.body.slice(0, 120)}`);
        const err = checkSse(this.body);
        if (!err && !this.firstAt) return this.finish('no body');
        this.finish(err);
    }
}

async function runGw(endAt) {
    const body = JSON.stringify(SHAPE.body);
    const reqBuf = Buffer.from(`POST ${SHAPE.path} HTTP/1.1\r\nHost: 127.0.0.1:${PORT}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const conns = [];
    for (let i = 0; i < CONC; i += 250) { // the listen backlog is 1024: connect in batches
        const batch = [];
        for (let j = i; j < Math.min(CONC, i + 250); j++) {
            const c = new HttpConn(PORT, reqBuf);
            conns.push(c);
            batch.push(c.connect());
        }
        await Promise.all(batch);
    }
    return async (stopAt) => {
        await Promise.all(conns.map(async (c) => {
            while (another(stopAt())) {
                if (c.dead) {
                    c.sock.destroy();
                    c.dead = false;
                    try { await c.connect(); } catch (e) { fail(`reconnect: ${e.code || e.message}`); return; }
                }
                open++;
                if (open > openMax) openMax = open;
                await c.request();
                open--;
            }
        }));
        for (const c of conns) c.sock.destroy();
    };
}

// ---- grpc mode: grpc-js straight to the mock ------------------------------------------------
async function runGrpc() {
    const nm = path.resolve(__dirname, '../../spec/e2e/node_modules');
    const grpc = require(path.join(nm, '@grpc/grpc-js'));
    const protoLoader = require(path.join(nm, '@grpc/proto-loader'));
    const def = protoLoader.loadSync(path.resolve(__dirname, '../../proto/gpt.proto'),
        { keepCase: true, longs: Number, enums: String, defaults: true });
    const Svc = grpc.loadPackageDefinition(def).runtime.aot.machine_learning.parents.gpt.GPTInferenceService;
    const client = new Svc(`127.0.0.1:${PORT}`, grpc.credentials.createInsecure(),
        { 'grpc.max_receive_message_length': -1 });
    const req = { models: MODEL, messages: [{ role: 1, message: 'hi' }] };

    const one = () => new Promise((resolve) => {
        const t0 = now();
        let first = 0, n = 0, ended = 0, bad = null;
        const call = client.PredictWithStream(req);
        call.on('data', (m) => {
            if (!first) first = now();
            if (m.response_code === 204) ended++;
            else if (m.response_code === 200) {
                const text = m.body && m.body.message_warpper && m.body.message_warpper.message &&
                    m.body.message_warpper.message.message;
                if (!bad && text !== `c${n} `) bad = `message ${n} is ${JSON.stringify(text)}`;
                n++;
            } else if (!bad) bad = `response_code ${m.response_code}`;
        });
        call.on('error', () => {});
        call.on('status', (st) => {
            if (st.code !== 0) fail(`grpc status ${st.code}: ${st.details}`);
            else if (bad) fail(bad);
            else if (n !== CHUNKS || ended !== 1) fail(`${n} messages and ${ended} end frames`);
            else {
                good++;
                recordTtfb(first - t0);
            }
            resolve();
        });
    });

    await new Promise((resolve, reject) => client.waitForReady(Date.now() + 5000,
        (e) => (e ? reject(e) : resolve())));
    await one(); // the connection and the proto paths warm
    good = 0; nTtfb = 0;
    return async (stopAt) => {
        await Promise.all(Array.from({ length: CONC }, async () => {
            while (another(stopAt())) {
                open++;
                if (open > openMax) openMax = open;
                await one();
                open--;
            }
        }));
        client.close();
    };
}

// ---- h2 mode: node:http2 with hand-made gRPC frames straight to the mock -------------------
// A lighter client than grpc-js (no call objects, no protobuf library), closer in cost to the
// raw HTTP/1.1 client of gw mode: the "upstream's own" TTFB with less client overhead.
function pbString(field, str) {
    const b = Buffer.from(str);
    return Buffer.concat([Buffer.from([(field << 3) | 2]), varint(b.length), b]);
}
function pbBytes(field, b) { return Buffer.concat([Buffer.from([(field << 3) | 2]), varint(b.length), b]); }
function varint(n) {
    const out = [];
    while (n > 127) { out.push((n & 127) | 128); n >>>= 7; }
    out.push(n);
    return Buffer.from(out);
}
// fields of one protobuf message: [[field, wiretype, value (number or Buffer)]]
function pbFields(buf) {
    const out = [];
    let i = 0;
    const rv = () => { let v = 0, m = 1, c; do { c = buf[i++]; v += (c & 127) * m; m *= 128; } while (c & 128); return v; };
    while (i < buf.length) {
        const key = rv(), f = Math.floor(key / 8), w = key & 7;
        if (w === 0) out.push([f, w, rv()]);
        else if (w === 2) { const n = rv(); out.push([f, w, buf.subarray(i, i + n)]); i += n; }
        else if (w === 1) { out.push([f, w, null]); i += 8; }
        else if (w === 5) { out.push([f, w, null]); i += 4; }
        else throw new Error(`wire type ${w}`);
    }
    return out;
}
const field = (fs_, n) => { const x = fs_.find((e) => e[0] === n); return x ? x[2] : undefined; };

async function runH2() {
    const http2 = require('node:http2');
    const msg = Buffer.concat([pbString(1, MODEL), pbBytes(2, Buffer.concat([Buffer.from([0x08, 1]), pbString(2, 'hi')]))]);
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt32BE(msg.length, 1);
    msg.copy(frame, 5);
    const session = http2.connect(`http://127.0.0.1:${PORT}`);
    session.on('error', (e) => fail(`h2 session: ${e.message}`));
    await new Promise((resolve, reject) => { session.once('connect', resolve); session.once('error', reject); });
    const headers = {
        ':method': 'POST', ':path': '/runtime.aot.machine_learning.parents.gpt.GPTInferenceService/PredictWithStream',
        'content-type': 'application/grpc', te: 'trailers',
    };
    const one = () => new Promise((resolve) => {
        const t0 = now();
        let first = 0, n = 0, ended = 0, bad = null, gst = null, buf = Buffer.alloc(0);
        const req = session.request(headers);
        req.on('response', (h) => { if (h['grpc-status'] !== undefined) gst = h['grpc-status']; });
        req.on('trailers', (h) => { gst = h['grpc-status']; });
        req.on('data', (d) => {
            if (!first) first = now();
            buf = buf.length ? Buffer.concat([buf, d]) : d;
            while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
                const len = buf.readUInt32BE(1);
                const r = pbFields(buf.subarray(5, 5 + len));
                buf = buf.subarray(5 + len);
                const code = field(r, 2);
                if (code === 204) ended++;
                else if (code === 200) {
                    const body = field(r, 4), mw = body && field(pbFields(body), 4);
                    const m = mw && field(pbFields(mw), 2), t = m && field(pbFields(m), 2);
                    const text = t ? t.toString() : undefined;
                    if (!bad && text !== `c${n} `) bad = `message ${n} is ${JSON.stringify(text)}`;
                    n++;
                } else if (!bad) bad = `response_code ${code}`;
            }
        });
        req.on('error', (e) => { if (!bad) bad = `h2 stream: ${e.message}`; });
        req.on('close', () => {
            if (gst !== '0') fail(`grpc-status ${gst}${bad ? `, ${bad}` : ''}`);
            else if (bad) fail(bad);
            else if (n !== CHUNKS || ended !== 1) fail(`${n} messages and ${ended} end frames`);
            else {
                good++;
                recordTtfb(first - t0);
            }
            resolve();
        });
        req.end(frame);
    });
    await one();
    good = 0; nTtfb = 0;
    return async (stopAt) => {
        await Promise.all(Array.from({ length: CONC }, async () => {
            while (another(stopAt())) {
                open++;
                if (open > openMax) openMax = open;
                await one();
                open--;
            }
        }));
        session.close();
    };
}

// ---- main ----------------------------------------------------------------------------------
async function main() {
    const loop = MODE === 'grpc' ? await runGrpc() : MODE === 'h2' ? await runH2() : await runGw();
    const st = { rssIdle: 0, anonIdle: 0, rssPeak: 0, anonPeak: 0, openAtPeak: -1, samples: 0,
        ticks0: 0, run0: 0, wait0: 0 };
    if (PID) {
        [st.rssIdle, st.anonIdle] = rssKb(PID);
        st.rssPeak = st.rssIdle;
        st.anonPeak = st.anonIdle;
        st.ticks0 = cpuTicks(PID);
        [st.run0, st.wait0] = schedNs(PID);
    }
    const sampler = PID ? setInterval(() => {
        const [r, a] = rssKb(PID);
        st.samples++;
        if (r > st.rssPeak) { st.rssPeak = r; st.openAtPeak = open; }
        if (a > st.anonPeak) st.anonPeak = a;
    }, SAMPLE_MS) : null;
    const t0 = now();
    let stop = t0 + DURATION * 1000;
    const watchdog = setTimeout(() => {
        fail(STREAMS ? `${STREAMS} streams not done in ${DURATION + TIMEOUT} s`
            : `streams still open ${TIMEOUT} s after the end of the run`);
        report(t0, now(), st, true);
        process.exit(2);
    }, (DURATION + TIMEOUT) * 1000);
    await loop(() => stop);
    const t1 = now();
    clearTimeout(watchdog);
    if (sampler) clearInterval(sampler);
    report(t0, t1, st, false);
}

function report(t0, t1, st, aborted) {
    const cpuTicksUsed = PID ? cpuTicks(PID) - st.ticks0 : 0;
    const [run1, wait1] = PID ? schedNs(PID) : [0, 0];
    const runNs = run1 - st.run0, waitNs = wait1 - st.wait0;
    const sorted = Array.from(ttfb.subarray(0, nTtfb)).sort((a, b) => a - b);
    const wall = (t1 - t0) / 1000;
    const out = {
        mode: MODE, ingress: INGRESS, model: MODEL, conc: CONC, wall_s: +wall.toFixed(3), streams: good, failures,
        fail_reasons: Object.fromEntries(failSamples), aborted,
        streams_per_s: +(good / wall).toFixed(1),
        ttfb_p50_ms: pct(sorted, 50), ttfb_p99_ms: pct(sorted, 99), ttfb_max_ms: pct(sorted, 100),
        open_max: openMax,
    };
    if (PID) {
        const cpuUs = (cpuTicksUsed * 1e6) / CLK_TCK;
        Object.assign(out, {
            cpu_us_per_stream: good ? +(cpuUs / good).toFixed(1) : null,
            cpu_us_per_stream_schedstat: good ? +(runNs / 1e3 / good).toFixed(1) : null,
            cpu_use_pct: +((100 * cpuUs) / 1e6 / wall).toFixed(1),
            run_queue_wait_pct: +((100 * waitNs) / 1e6 / (t1 - t0)).toFixed(1),
            rss_idle_kb: st.rssIdle, rss_peak_kb: st.rssPeak, anon_idle_kb: st.anonIdle,
            anon_peak_kb: st.anonPeak, open_at_peak: st.openAtPeak, rss_samples: st.samples,
        });
    }
    process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
    process.stderr.write(`load: ${e.stack || e}\n`);
    process.exit(1);
});

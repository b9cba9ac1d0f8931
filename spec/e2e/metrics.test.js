// pieces-gateway end-to-end: GET /metrics checked by promtool and scraped by a real Prometheus,
// its access rules, policy metrics through the binary, and the JSON access log.
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
const { startGateway, tmpDir, sleep, ROOT, runBin, baseEnv } = require('./lib/gateway');
const { promtoolCheck, startPrometheus } = require('./lib/prometheus');

const USER = [{ role: 'user', content: 'hi' }];

async function setup(t, env = {}, opts = {}) {
  const mock = await startMock({ tls: null });
  const addr = `http://127.0.0.1:${mock.port}`;
  const gw = await startGateway({ ...opts, env: {
    GPT_GRPC_ADDR: addr, VERTEX_GRPC_ADDR: addr, MIN_POOL_SIZE: '1', ...env,
  } });
  t.after(async () => { await gw.stop(); await mock.close(); });
  return { gw, mock };
}

async function metricsText(gw, headers = {}) {
  const r = await fetch(`${gw.url}/metrics`, { headers });
  const text = await r.text();
  return { status: r.status, text, type: r.headers.get('content-type') };
}

// One chat completion; the usage the client received.
async function chat(gw, { stream = false, model = 'gpt-4o', headers = {} } = {}) {
  const r = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, stream, messages: USER }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  if (!stream) return JSON.parse(text).usage;
  let usage = null;
  for (const e of text.split('\n\n')) {
    if (!e.startsWith('data: ') || e === 'data: [DONE]') continue;
    const chunk = JSON.parse(e.slice(6));
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(usage, 'the stream carried usage');
  return usage;
}

// The value of one sample line of the exposition (labels exactly as written), or undefined.
function sample(text, line) {
  for (const l of text.split('\n')) {
    if (l.startsWith(`${line} `)) return Number(l.slice(line.length + 1));
  }
  return undefined;
}

// Per scrape timestamp: the sum of a counter's raw samples (every series of one scrape shares
// its timestamp).
async function rawSums(prom, metric) {
  const data = await prom.query(`${metric}[30s]`);
  const sums = new Map();
  for (const s of data.result) {
    for (const [ts, v] of s.values) sums.set(ts, (sums.get(ts) || 0) + Number(v));
  }
  return [...sums.entries()].sort((a, b) => a[0] - b[0]);
}

// Waits until the latest scrape shows `expected` as the sum of the counter; its timestamp.
async function scrapedTotal(prom, metric, expected, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    const sums = await rawSums(prom, metric);
    last = sums.at(-1);
    if (last && last[1] === expected) return last[0];
    await sleep(250);
  }
  throw new Error(`${metric}: the latest scrape shows ${JSON.stringify(last)}, want ${expected}`);
}

function vector(data) {
  assert.equal(data.resultType, 'vector');
  const out = {};
  for (const r of data.result) out[JSON.stringify(r.metric)] = Number(r.value[1]);
  return out;
}

test('a real Prometheus scrapes requests, tokens and time to first token', async (t) => {
  const { gw } = await setup(t, { WORKERS: '2' });

  await t.test('promtool accepts the exposition before any traffic', async () => {
    const m = await metricsText(gw);
    assert.equal(m.status, 200);
    assert.equal(m.type, 'text/plain; version=0.0.4; charset=utf-8');
    const check = promtoolCheck(m.text);
    assert.equal(check.status, 0, check.output);
    for (const name of ['gateway_http_requests_total', 'gateway_http_request_duration_seconds',
      'gateway_http_connections', 'gateway_llm_requests_total',
      'gateway_llm_time_to_first_token_seconds', 'gateway_llm_request_duration_seconds',
      'gateway_llm_time_per_output_token_seconds', 'gateway_llm_tokens_total',
      'gateway_llm_usage_source_total', 'gateway_llm_active_streams',
      'gateway_upstream_attempts_total', 'gateway_upstream_connections',
      'gateway_upstream_breaker_open', 'gateway_ratelimit_rejections_total',
      'gateway_bans_active', 'gateway_bans_added_total', 'gateway_policy_errors_total',
      'gateway_reloads_total', 'gateway_config_version', 'gateway_build_info',
      'process_start_time_seconds', 'process_resident_memory_bytes']) {
      assert.match(m.text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.equal(sample(m.text, 'gateway_llm_active_streams'), 0);
    assert.equal(sample(m.text, 'gateway_config_version'), 1);
    assert.equal(sample(m.text, 'gateway_upstream_breaker_open{backend="pieces"}'), 0);
    assert.ok(sample(m.text, 'process_resident_memory_bytes') > 1e6);
    assert.ok(Math.abs(sample(m.text, 'process_start_time_seconds') - Date.now() / 1000) < 120);
  });

  const prom = await startPrometheus({ target: `127.0.0.1:${gw.port}` });
  t.after(() => prom.stop());

  await t.test('increase() of requests and tokens equals what the clients received', async () => {
    // the series exist (value 1) before the measured window, so increase() sees every request
    await chat(gw, { stream: false });
    await chat(gw, { stream: true });
    const t0 = await scrapedTotal(prom, 'gateway_llm_requests_total', 2);
    const N_STREAM = 4;
    const N_PLAIN = 5;
    const usage = { prompt: 0, completion: 0 };
    const jobs = [];
    for (let i = 0; i < N_STREAM; i++) jobs.push(chat(gw, { stream: true }));
    for (let i = 0; i < N_PLAIN; i++) jobs.push(chat(gw, { stream: false }));
    for (const u of await Promise.all(jobs)) {
      usage.prompt += u.prompt_tokens;
      usage.completion += u.completion_tokens;
    }
    const t1 = await scrapedTotal(prom, 'gateway_llm_requests_total', 2 + N_STREAM + N_PLAIN);
    // (t1 - range, t1] holds the sample at t0: extrapolation adds at most 1 ms / (t1 - t0)
    const range = `${Math.round((t1 - t0) * 1000) + 1}ms`;
    const near = (v, want, what) => {
      assert.ok(Math.abs(v - want) <= 0.01 * want, `${what}: ${v}, want ${want}`);
    };
    const byStream = vector(await prom.query(
      `sum by (stream) (increase(gateway_llm_requests_total{model="gpt-4o",backend="pieces",status="200"}[${range}]))`, t1));
    near(byStream['{"stream":"true"}'], N_STREAM, 'stream requests');
    near(byStream['{"stream":"false"}'], N_PLAIN, 'non-stream requests');
    const tokens = vector(await prom.query(
      `sum by (type) (increase(gateway_llm_tokens_total{model="gpt-4o",backend="pieces"}[${range}]))`, t1));
    near(tokens['{"type":"prompt"}'], usage.prompt, 'prompt tokens');
    near(tokens['{"type":"completion"}'], usage.completion, 'completion tokens');
    const ttft = await prom.query('histogram_quantile(0.9, sum by (le) (increase('
      + `gateway_llm_time_to_first_token_seconds_bucket{model="gpt-4o"}[${range}])))`, t1);
    assert.equal(ttft.result.length, 1, JSON.stringify(ttft));
    const q = Number(ttft.result[0].value[1]);
    assert.ok(Number.isFinite(q) && q > 0 && q <= 120, `TTFT p90 ${q}`);
    const attempts = vector(await prom.query(
      `sum(increase(gateway_upstream_attempts_total{backend="pieces",result="ok"}[${range}]))`, t1));
    near(attempts['{}'], N_STREAM + N_PLAIN, 'upstream attempts');
  });

  await t.test('promtool accepts the exposition after traffic; streams are back to 0', async () => {
    const m = await metricsText(gw);
    const check = promtoolCheck(m.text);
    assert.equal(check.status, 0, check.output);
    assert.equal(sample(m.text, 'gateway_llm_active_streams'), 0);
    assert.ok(sample(m.text, 'gateway_llm_usage_source_total{source="tokenizer"}') >= 11);
    assert.ok(sample(m.text,
      'gateway_http_requests_total{route="chat",method="POST",status="200"}') >= 11);
    assert.ok(sample(m.text, 'gateway_llm_time_per_output_token_seconds_count{model="gpt-4o",backend="pieces"}') >= 1);
    assert.ok(sample(m.text, 'gateway_upstream_connections{backend="pieces",state="ready"}') >= 1);
  });
});

test('GET /metrics: METRICS_ALLOW, the admin key, METRICS=off', async (t) => {
  await t.test('refused from an address outside METRICS_ALLOW, served with the admin key',
    async (t2) => {
      const { gw } = await setup(t2, { METRICS_ALLOW: '10.0.0.0/8,192.0.2.7' });
      const refused = await metricsText(gw);
      assert.equal(refused.status, 403);
      const err = JSON.parse(refused.text).error;
      assert.equal(err.code, 'forbidden');
      assert.match(err.message, /METRICS_ALLOW/);
      assert.equal((await metricsText(gw, { authorization: 'Bearer wrong' })).status, 403);
      assert.equal((await metricsText(gw, { authorization: 'admin-test-key' })).status, 403);
      const ok = await metricsText(gw, { authorization: 'Bearer admin-test-key' });
      assert.equal(ok.status, 200);
      assert.match(ok.text, /^# TYPE gateway_http_requests_total counter$/m);
      // the refused scrapes are counted like any request
      assert.equal(sample(ok.text,
        'gateway_http_requests_total{route="metrics",method="GET",status="403"}'), 3);
      const post = await fetch(`${gw.url}/metrics`, { method: 'POST' });
      assert.equal(post.status, 405);
    });

  await t.test('a bad METRICS_ALLOW entry is a configuration error naming it', () => {
    const env = baseEnv(tmpDir(), 8787, { METRICS_ALLOW: '10.0.0.0/8,not-an-ip' });
    const r = runBin(['-t', '-c', path.join(ROOT, 'gateway.lua')], { env });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /metrics\.allow: .*not-an-ip/);
  });

  await t.test('METRICS=off: nothing recorded, no /metrics route', async (t2) => {
    const { gw } = await setup(t2, { METRICS: 'off' });
    await chat(gw);
    assert.equal((await metricsText(gw)).status, 404);
  });
});

test('policy metrics, rate limits, bans, policy errors and reloads through the binary',
  async (t) => {
    const dir = tmpDir();
    const pdir = path.join(dir, 'policies');
    fs.mkdirSync(pdir);
    for (const f of fs.readdirSync(path.join(ROOT, 'policies'))) {
      fs.copyFileSync(path.join(ROOT, 'policies', f), path.join(pdir, f));
    }
    // the example policy of docs/policy-api.md, as documented
    const doc = fs.readFileSync(path.join(ROOT, 'docs/policy-api.md'), 'utf8');
    const example = /```lua\n(-- policies\/request_sizes\.lua[\s\S]*?)```/.exec(doc)[1];
    fs.writeFileSync(path.join(pdir, 'request_sizes.lua'), example);
    fs.writeFileSync(path.join(pdir, 'faulty.lua'), [
      'local _M = { name = "faulty" }',
      'function _M.new() return setmetatable({}, { __index = _M }) end',
      'function _M:access(r) if r.req.path == "/boom" then error("boom") end end',
      'return _M', ''].join('\n'));
    const config = path.join(dir, 'gateway.lua');
    fs.writeFileSync(config, fs.readFileSync(path.join(ROOT, 'gateway.lua'), 'utf8').replace(
      '{ name = "admin"', '{ name = "request_sizes" },\n        { name = "faulty" },\n'
        + '        { name = "admin"'));
    const { gw } = await setup(t, {
      POLICIES_DIR: pdir, API_KEY: 'sk-a,sk-b', RATE_LIMIT_ENABLED: 'true', RATE_LIMIT: '2',
      BLACKLIST_THRESHOLD: '1', ACCESS_LOG_FORMAT: 'json', IP_WHITELIST: '127.0.0.1',
    }, { dir, config });
    const key = { authorization: 'Bearer sk-b' };
    await chat(gw, { headers: key });
    await chat(gw, { stream: true, headers: { ...key, 'x-forwarded-for': '203.0.113.9' } });
    // a client over its limit (through a trusted proxy), then banned at the first violation
    const spoofed = { ...key, 'x-forwarded-for': '203.0.113.9' };
    let r = await fetch(`${gw.url}/v1/models`, { headers: spoofed });
    assert.equal(r.status, 200);
    r = await fetch(`${gw.url}/v1/models`, { headers: spoofed });
    assert.equal(r.status, 429);
    r = await fetch(`${gw.url}/v1/models`, { headers: spoofed });
    assert.equal(r.status, 403, 'banned');
    r = await fetch(`${gw.url}/boom`);
    assert.equal(r.status, 500);
    r = await fetch(`${gw.url}/admin/reload`, { method: 'POST',
      headers: { authorization: 'Bearer admin-test-key' } });
    assert.equal(r.status, 200);
    let m;
    const deadline = Date.now() + 10000;
    do {
      await sleep(100);
      m = (await metricsText(gw)).text;
    } while (sample(m, 'gateway_config_version') !== 2 && Date.now() < deadline);
    assert.equal(sample(m, 'gateway_config_version'), 2);
    assert.equal(sample(m, 'gateway_reloads_total{result="ok"}'), 1);
    assert.equal(sample(m, 'gateway_ratelimit_rejections_total{rule="default"}'), 1);
    assert.equal(sample(m, 'gateway_bans_added_total{mode="single"}'), 1);
    assert.equal(sample(m, 'gateway_bans_active'), 1);
    assert.equal(sample(m, 'gateway_policy_errors_total{policy="faulty",phase="access"}'), 1);
    assert.equal(sample(m, 'gateway_example_answers_total{key="2",status="200"}'), 3);
    assert.ok(sample(m, 'gateway_example_request_body_bytes_count{class="api"}') >= 4);
    assert.equal(sample(m, 'gateway_http_requests_total{route="admin",method="POST",status="200"}'), 1);
    const check = promtoolCheck(m);
    assert.equal(check.status, 0, check.output);

    await t.test('the JSON access log has the fields log shippers need', async () => {
      const lines = gw.stdout.split('\n').filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
      const plain = lines.find((l) => l.route === 'chat' && l.stream === false);
      assert.ok(plain, gw.stdout);
      assert.match(plain.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(plain.client_ip, '127.0.0.1');
      assert.equal(plain.method, 'POST');
      assert.equal(plain.uri, '/v1/chat/completions');
      assert.equal(plain.status, 200);
      assert.ok(plain.duration_ms > 0);
      assert.equal(plain.model, 'gpt-4o');
      assert.equal(plain.backend, 'pieces');
      assert.equal(plain.prompt_tokens, 8);
      assert.equal(plain.completion_tokens, 3);
      assert.equal(plain.usage_source, 'tokenizer');
      assert.ok(plain.ttft_ms > 0 && plain.ttft_ms <= plain.duration_ms);
      assert.equal(plain.attempts, 1);
      const streamed = lines.find((l) => l.route === 'chat' && l.stream === true);
      assert.equal(streamed.client_ip, '203.0.113.9');
      assert.ok(streamed.ttft_ms > 0);
      const models = lines.find((l) => l.route === 'models' && l.status === 429);
      assert.deepEqual([models.model, models.backend, models.stream, models.prompt_tokens,
        models.usage_source, models.ttft_ms, models.attempts], [null, null, null, null, null,
        null, null]);
    });
  });

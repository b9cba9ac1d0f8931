// pieces-gateway end-to-end helpers: a real Prometheus server (Debian `prometheus`) scraping the
// gateway, and `promtool check metrics`.
// Copyright (C) 2026 pieces-gateway authors
// This program is free software: you can redistribute it and/or modify it under the terms of
// the GNU General Public License as published by the Free Software Foundation, either version 3
// of the License, or (at your option) any later version. See LICENSE.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { freePort, tmpDir, sleep } = require('./gateway');

// promtool check metrics < text: { status, output } (status 0: accepted, no lint problems).
function promtoolCheck(text) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8',
    timeout: 20000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

// Starts Prometheus on a free loopback port, scraping `target` ("127.0.0.1:PORT") every
// second; its storage and config live in a temp dir removed by stop().
async function startPrometheus({ target, job = 'gateway', metricsPath = '/metrics' }) {
  const dir = tmpDir('gw-prom-');
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 900ms',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    `  - job_name: ${job}`,
    `    metrics_path: ${metricsPath}`,
    '    static_configs:',
    `      - targets: ['${target}']`,
    '',
  ].join('\n'));
  const proc = spawn('prometheus', [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const prom = {
    url,
    get log() { return log; },
    async query(expr, time) {
      const q = new URLSearchParams({ query: expr });
      if (time !== undefined) q.set('time', String(time));
      const r = await fetch(`${url}/api/v1/query?${q}`);
      const body = await r.json();
      if (body.status !== 'success') throw new Error(`query ${expr}: ${JSON.stringify(body)}`);
      return body.data;
    },
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  // start-up: the TSDB and the web handler take a moment (longer on a loaded machine)
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      const r = await fetch(`${url}/-/ready`);
      await r.arrayBuffer();
      if (r.status === 200) return prom;
    } catch (e) { /* not listening yet */ }
    await sleep(100);
  }
  await prom.stop();
  throw new Error(`prometheus did not start:\n${log}`);
}

module.exports = { promtoolCheck, startPrometheus };

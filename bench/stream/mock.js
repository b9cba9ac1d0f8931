#!/usr/bin/env node
// pieces-gateway: the e2e grpc-js mock upstream (spec/e2e/mock/mock.js) set up for bench/stream.sh.
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// node bench/stream/mock.js --port N --map MODEL=SCENARIO[,MODEL=SCENARIO...]
//
// The gateway forwards only catalog models, so the model-string scenarios of the mock CLI
// (spec/e2e/mock/server.js, e.g. "chunks-20-0") cannot be reached through it. This wrapper
// starts the same mock and maps catalog models to those scenarios (scripts.js), for the
// gateway and for the direct grpc-js client alike; unmapped models get the default script.
// The mock's request/event logs are emptied every second so that a long run does not grow
// the mock. Prints "READY port=N" when listening.
'use strict';
const path = require('node:path');
const E2E = path.resolve(__dirname, '../../spec/e2e');
const { startMock } = require(path.join(E2E, 'mock/mock.js'));
const { scriptForModel } = require(path.join(E2E, 'mock/scripts.js'));

function parseArgs(argv) {
    const a = {};
    for (let i = 2; i < argv.length; i += 2) {
        if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
        a[argv[i].slice(2)] = argv[i + 1];
    }
    return a;
}

async function main() {
    const a = parseArgs(process.argv);
    const map = {};
    for (const kv of String(a.map || '').split(',').filter(Boolean)) {
        const [model, scenario] = kv.split('=');
        map[model] = scriptForModel(scenario);
    }
    const mock = await startMock({ host: a.host || '127.0.0.1', port: Number(a.port || 0) });
    const byModel = (call, ctx) => ctx.runScript(map[ctx.rec.model] || scriptForModel(ctx.rec.model));
    mock.on('gpt', byModel).on('vertex', byModel);
    setInterval(() => {
        mock.requests.length = 0;
        mock.cancellations.length = 0;
        mock.events.length = 0;
    }, 1000).unref();
    process.stdout.write(`READY port=${mock.port}\n`);
    const stop = () => mock.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

main().catch((e) => {
    process.stderr.write(`stream mock: ${e.stack || e}\n`);
    process.exit(1);
});

// pieces-gateway: test certificates for the mock upstream, made with the openssl CLI.
// Copyright (C) 2026 pieces-gateway authors. GPL-3.0-or-later, see LICENSE.
//
// makeCerts(dir) writes ca.pem/ca.key, server.pem/server.key (signed by that CA, SAN
// localhost + 127.0.0.1 + ::1) and other-ca.pem (an unrelated CA, for "wrong CA" tests).
// Keys are generated at test time into a temp dir; nothing here is committed.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

function ossl(args, cwd) {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir, name) {
    ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj',
        `/CN=pieces-gateway test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

function makeCerts(dir) {
    fs.mkdirSync(dir, { recursive: true });
    makeCa(dir, 'ca');
    makeCa(dir, 'other-ca');
    ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
    fs.writeFileSync(path.join(dir, 'ext.cnf'),
        'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' +
        'extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
    ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
        '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf'], dir);
    return {
        dir,
        ca: path.join(dir, 'ca.pem'),
        otherCa: path.join(dir, 'other-ca.pem'),
        cert: path.join(dir, 'server.pem'),
        key: path.join(dir, 'server.key'),
    };
}

module.exports = { makeCerts };

if (require.main === module) {
    const dir = process.argv[2];
    if (!dir) {
        process.stderr.write('usage: node certs.js DIR\n');
        process.exit(2);
    }
    makeCerts(dir);
}

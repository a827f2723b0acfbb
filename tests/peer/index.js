// Backstage's own catalog backend, nothing else: the new backend system
// (@backstage/backend-defaults) with only @backstage/plugin-catalog-backend.
// Started by tests/benches/peer.rs as
//   node index.js --config app-config.yaml --config <run config>
// (the run config sets the port and the catalog location; Backstage's config
// loader reads every --config from argv and merges them in order).
'use strict';

const { createBackend } = require('@backstage/backend-defaults');

const backend = createBackend();
backend.add(import('@backstage/plugin-catalog-backend'));
backend.start().then(
  () => process.stderr.write('peer: backstage catalog backend started\n'),
  error => {
    process.stderr.write(`peer: backstage failed to start: ${error.stack || error}\n`);
    process.exit(1);
  },
);

// The bench stops this process with SIGTERM (or SIGKILL after a grace period).
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}

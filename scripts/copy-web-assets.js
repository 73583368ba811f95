'use strict';
// tsc emits only .js: the portal's page templates and static files are copied next to the compiled code.
// Used by `npm run build` (into dist/) and by the benchmark's build (into .bench/dist/).
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const outDir = path.resolve(ROOT, process.argv[2] ?? 'dist');
for (const folder of ['views', 'static']) {
  fs.cpSync(path.join(ROOT, 'src/portal/web', folder), path.join(outDir, 'portal/web', folder), { recursive: true });
}

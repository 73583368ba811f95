import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from './load';

/** The installed package's version (package.json), shown by `sealgate --version`, /healthz and build-info metrics. */
export const VERSION: string = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

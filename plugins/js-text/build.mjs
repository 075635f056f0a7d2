// Builds app.js into a WebAssembly component: `node build.mjs [OUTPUT.wasm]`
// (by default ../target/js/jstext.wasm). `cargo xtask plugins` runs it after
// `npm ci`.
//
// componentize() is called directly rather than through `jco componentize`
// (no CLI layer). Its WIT reader runs on @bytecodealliance/preview2-shim, which
// componentize-js 0.23 imports without declaring it: package.json pins 0.25.0,
// because 0.26 no longer preopens `/` and every WIT path then fails with
// "reading file ...: No such file or directory (os error 44)".

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { componentize } from '@bytecodealliance/componentize-js';

const here = dirname(fileURLToPath(import.meta.url));
const output = resolve(process.argv[2] ?? resolve(here, '../target/js/jstext.wasm'));

const { component } = await componentize({
  sourcePath: resolve(here, 'app.js'),
  witPath: resolve(here, '../../wit/plugin.wit'),
  worldName: 'tool',
  // The plugin needs none of these; without them the component imports
  // nothing but `warden:plugin/log` and `types`: no WASI interface at all.
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});

await mkdir(dirname(output), { recursive: true });
await writeFile(output, component);

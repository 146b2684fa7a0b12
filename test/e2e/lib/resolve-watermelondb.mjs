// A module resolve hook (node:module register) for running app code written for a bundler, as
// written, in the end-to-end tests:
//   - every '@nozbe/watermelondb...' import resolves to this suite's copy, the one the harness's
//     databases and logger capture come from;
//   - a directory import ('@nozbe/watermelondb/sync') resolves to its index.js, as bundlers and
//     require() do (Node's ESM resolver refuses directory imports);
//   - the web app's sources (examples/web/src, ES modules in a package esbuild bundles, without
//     "type": "module") load as ES modules.
const HERE = import.meta.url

async function resolveAny(specifier, context, next) {
  const fromSuite = specifier.startsWith('@nozbe/watermelondb') ? { ...context, parentURL: HERE } : context
  try {
    return await next(specifier, fromSuite)
  } catch (e) {
    if (e.code !== 'ERR_UNSUPPORTED_DIR_IMPORT' && e.code !== 'ERR_MODULE_NOT_FOUND') throw e
    return next(`${specifier}/index.js`, fromSuite)
  }
}

export async function resolve(specifier, context, next) {
  const resolved = await resolveAny(specifier, context, next)
  return resolved.url.includes('/examples/web/src/') ? { ...resolved, format: 'module' } : resolved
}

// The built-in modules, evaluated once when the runtime is snapshotted (so a rule pays only
// for what it calls). The prelude takes this object, freezes it and serves `require` from it.
globalThis.__wardstone_modules = {
  'ipaddr.js': require('ipaddr.js'),
  lodash: require('lodash'),
  moment: require('moment'),
  querystring: require('querystring-es3'),
  url: require('url'),
  uuid: require('uuid'),
};

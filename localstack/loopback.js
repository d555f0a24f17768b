// Preloaded into kinesis-local (`node -r ./loopback.js`): kinesis-mock binds every
// interface and has no setting for it, and our rule is that local servers listen on
// 127.0.0.1 only. Rewriting the host of every net.Server.listen call is the smallest
// change that enforces it without patching the emulator.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const callback = args.find((a) => typeof a === 'function');
  let options;
  if (args.length && typeof args[0] === 'object' && args[0] !== null) {
    options = Object.assign({}, args[0], { host: '127.0.0.1' });
  } else {
    options = { port: Number(args[0]) || 0, host: '127.0.0.1' };
  }
  return callback ? listen.call(this, options, callback) : listen.call(this, options);
};

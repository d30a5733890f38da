// npm's `uuid` 9 (randomness from the host through Web Crypto's getRandomValues). Also
// callable, as uuid 3 — what Auth0's runtime had — was: `require('uuid')()` is a v4.
const uuid = require('uuid');

const callable = (...args) => uuid.v4(...args);
Object.assign(callable, uuid);
module.exports = callable;

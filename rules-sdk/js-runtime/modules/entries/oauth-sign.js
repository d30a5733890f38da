module.exports = require('oauth-sign');

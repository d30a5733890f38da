module.exports = require('ipaddr.js');

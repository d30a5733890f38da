module.exports = require('moment');

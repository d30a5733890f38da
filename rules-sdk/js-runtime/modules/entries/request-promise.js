// npm's `request-promise` (and `request-promise-native`): request's options, a Promise of the
// body — or of the whole response with `resolveWithFullResponse` — rejected with a
// StatusCodeError for a status outside 2xx unless `simple: false`.
const request = require('request');

class RequestError extends Error {
  constructor(cause, options) {
    super(String(cause && cause.message ? cause.message : cause));
    this.name = 'RequestError';
    this.cause = cause;
    this.error = cause;
    this.options = options;
  }
}

class StatusCodeError extends Error {
  constructor(statusCode, body, options, response) {
    super(`${statusCode} - ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.name = 'StatusCodeError';
    this.statusCode = statusCode;
    this.error = body;
    this.options = options;
    this.response = response;
  }
}

const make = (defaults) => {
  const rp = function rp(uri, options) {
    const opts = Object.assign({}, defaults, typeof uri === 'object' && uri !== null ? uri : Object.assign({}, options, { uri }));
    return request.perform(opts).then(
      (response) => {
        const ok = response.statusCode >= 200 && response.statusCode < 300;
        if (!ok && opts.simple !== false) throw new StatusCodeError(response.statusCode, response.body, opts, response);
        if (typeof opts.transform === 'function') return opts.transform(response.body, response, !!opts.resolveWithFullResponse);
        return opts.resolveWithFullResponse ? response : response.body;
      },
      (error) => { throw new RequestError(error, opts); },
    );
  };
  const verb = (method) => (uri, options) => {
    const opts = typeof uri === 'object' && uri !== null ? Object.assign({}, uri) : Object.assign({}, options, { uri });
    opts.method = method;
    return rp(opts);
  };
  rp.get = verb('GET');
  rp.post = verb('POST');
  rp.put = verb('PUT');
  rp.patch = verb('PATCH');
  rp.del = verb('DELETE');
  rp.delete = verb('DELETE');
  rp.head = verb('HEAD');
  rp.defaults = (more) => make(Object.assign({}, defaults, more));
  rp.errors = { RequestError, StatusCodeError };
  return rp;
};

module.exports = make({});

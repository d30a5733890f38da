// npm's `request` (callback API), over the runtime's fetch: request(uri | options[, options],
// callback(err, response, body)), request.get/post/put/patch/del/head, request.defaults.
// Options: uri|url, baseUrl, method, headers, qs, json, body, form, auth {user|username,
// pass|password, bearer}, timeout (the host's deadline applies whatever it says). Redirects,
// streams and multipart are not offered.
const { buildUrl, lowerHeaders, basicAuth, send, parseJson, querystring } = require('../shared/http');

const normalize = (uri, options, callback) => {
  if (typeof options === 'function') {
    callback = options;
    options = undefined;
  }
  const opts = typeof uri === 'object' && uri !== null
    ? Object.assign({}, uri)
    : Object.assign({}, options || {}, { uri });
  return { opts, callback };
};

const perform = (opts) => {
  const target = opts.uri !== undefined ? opts.uri : opts.url;
  if (target === undefined || target === null || target === '') {
    return Promise.reject(new Error('options.uri is a required argument'));
  }
  const url = buildUrl(opts.baseUrl, typeof target === 'object' && target.href ? target.href : target, opts.qs);
  const headers = lowerHeaders(opts.headers);
  let body;
  if (opts.form !== undefined) {
    body = typeof opts.form === 'string' ? opts.form : querystring.stringify(opts.form);
    headers['content-type'] = headers['content-type'] || 'application/x-www-form-urlencoded';
  } else if (opts.json !== undefined && opts.json !== false && opts.json !== true) {
    body = JSON.stringify(opts.json);
    headers['content-type'] = headers['content-type'] || 'application/json';
  } else if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    if (opts.json) headers['content-type'] = headers['content-type'] || 'application/json';
  }
  if (opts.json) headers.accept = headers.accept || 'application/json';
  if (opts.auth) {
    const a = opts.auth;
    if (a.bearer !== undefined) headers.authorization = `Bearer ${typeof a.bearer === 'function' ? a.bearer() : a.bearer}`;
    else headers.authorization = basicAuth(a.user !== undefined ? a.user : a.username, a.pass !== undefined ? a.pass : a.password);
  }
  const method = String(opts.method || 'GET').toUpperCase();
  return send(method, url, headers, body).then((r) => {
    const responseBody = opts.json ? parseJson(r.text) : r.text;
    const response = {
      statusCode: r.status,
      statusMessage: r.statusText,
      headers: r.headers,
      body: responseBody,
      request: { uri: { href: url }, method, headers },
      toJSON() { return { statusCode: r.status, headers: r.headers, body: responseBody }; },
    };
    return response;
  });
};

const make = (defaults) => {
  const request = function request(uri, options, callback) {
    const n = normalize(uri, options, callback);
    const opts = Object.assign({}, defaults, n.opts);
    if (defaults.headers && n.opts.headers) opts.headers = Object.assign({}, defaults.headers, n.opts.headers);
    const given = typeof n.callback === 'function' ? n.callback : () => {};
    // An exception in the callback fails the rule with it, as it would crash Node's.
    const done = (...args) => {
      try {
        given(...args);
      } catch (e) {
        __wardstone_host.fail(e);
      }
    };
    perform(opts).then(
      (response) => done(null, response, response.body),
      (error) => done(error),
    );
    return { abort() {}, on() { return this; } };
  };
  const verb = (method) => (uri, options, callback) => {
    const n = normalize(uri, options, callback);
    n.opts.method = method;
    return request(n.opts, n.callback);
  };
  request.get = verb('GET');
  request.post = verb('POST');
  request.put = verb('PUT');
  request.patch = verb('PATCH');
  request.del = verb('DELETE');
  request.delete = verb('DELETE');
  request.head = verb('HEAD');
  request.defaults = (more) => make(Object.assign({}, defaults, more));
  request.perform = perform;
  return request;
};

module.exports = make({});

// What the HTTP client modules (request, request-promise, axios, slack-notify) share: one
// request through the runtime's `fetch` (the host's wardstone.http_fetch: the tenant's
// allow-list, deadline and caps), with Node-style headers and bodies.
const querystring = require('querystring-es3');

// `base` + `path`, then `query` (an object; arrays repeat the key) appended.
const buildUrl = (base, path, query) => {
  let url = String(path === undefined || path === null ? '' : path);
  if (base && !/^[a-z][a-z0-9+.-]*:/i.test(url)) {
    url = `${String(base).replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}`;
  }
  if (query && typeof query === 'object') {
    const text = typeof query.getAll === 'function' && typeof query.append === 'function'
      ? query.toString()
      : querystring.stringify(Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)));
    if (text) url += (url.includes('?') ? '&' : '?') + text;
  }
  return url;
};

const lowerHeaders = (headers) => {
  const out = {};
  if (headers && typeof headers === 'object') {
    for (const key of Object.keys(headers)) {
      if (headers[key] !== undefined && headers[key] !== null) out[key.toLowerCase()] = String(headers[key]);
    }
  }
  return out;
};

const { Buffer } = require('buffer');

const basicAuth = (user, pass) =>
  `Basic ${Buffer.from(`${user === undefined ? '' : user}:${pass === undefined ? '' : pass}`).toString('base64')}`;

// One exchange: resolves `{status, statusText, headers (plain, lower-case), text, url}`,
// rejects with the fetch failure (refused by the allow-list, timed out, ...).
const send = (method, url, headers, body) =>
  fetch(url, { method, headers, body }).then((response) =>
    response.text().then((text) => {
      const plain = {};
      response.headers.forEach((v, k) => { plain[k] = v; });
      return { status: response.status, statusText: response.statusText, headers: plain, text, url };
    }));

const parseJson = (text) => {
  if (typeof text !== 'string' || text.trim() === '') return text;
  try {
    return JSON.parse(text);
  } catch (e) {
    return text;
  }
};

module.exports = { buildUrl, lowerHeaders, basicAuth, send, parseJson, querystring };

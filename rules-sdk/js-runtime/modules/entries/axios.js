// npm's `axios` (the 0.x/1.x request API), over the runtime's fetch: axios(config) and
// axios(url, config), the verb helpers, axios.create, defaults, interceptors, validateStatus,
// and errors carrying `response` as axios's do. Response bodies are parsed as JSON when they
// are JSON (axios's default transformResponse).
const { buildUrl, lowerHeaders, basicAuth, send, parseJson, querystring } = require('../shared/http');

class AxiosError extends Error {
  constructor(message, code, config, response) {
    super(message);
    this.name = 'AxiosError';
    this.code = code;
    this.config = config;
    this.response = response;
    this.isAxiosError = true;
  }
  toJSON() {
    return { message: this.message, name: this.name, code: this.code, status: this.response && this.response.status };
  }
}

const mergeConfig = (a, b) => {
  const out = Object.assign({}, a, b);
  out.headers = Object.assign({}, a && a.headers, b && b.headers);
  return out;
};

const interceptorList = () => {
  const handlers = [];
  return {
    handlers,
    use(fulfilled, rejected) {
      handlers.push({ fulfilled, rejected });
      return handlers.length - 1;
    },
    eject(id) { handlers[id] = null; },
    clear() { handlers.length = 0; },
  };
};

const dispatch = (config) => {
  const method = String(config.method || 'get').toUpperCase();
  const url = buildUrl(config.baseURL, config.url, config.params);
  const { common, get, post, put, patch, delete: del, head, ...own } = config.headers || {};
  const perMethod = { GET: get, POST: post, PUT: put, PATCH: patch, DELETE: del, HEAD: head }[method];
  const headers = lowerHeaders(Object.assign({}, common, perMethod, own));
  let body;
  const data = config.data;
  if (data !== undefined && data !== null) {
    if (typeof data === 'string') body = data;
    else if (typeof data.getAll === 'function' && typeof data.append === 'function') {
      body = data.toString();
      headers['content-type'] = headers['content-type'] || 'application/x-www-form-urlencoded';
    } else if ((headers['content-type'] || '').startsWith('application/x-www-form-urlencoded')) {
      body = querystring.stringify(data);
    } else {
      body = JSON.stringify(data);
      headers['content-type'] = headers['content-type'] || 'application/json';
    }
  }
  headers.accept = headers.accept || 'application/json, text/plain, */*';
  if (config.auth) headers.authorization = basicAuth(config.auth.username, config.auth.password);
  return send(method, url, headers, body).then(
    (r) => {
      const response = {
        data: config.responseType === 'text' ? r.text : parseJson(r.text),
        status: r.status,
        statusText: r.statusText,
        headers: r.headers,
        config,
        request: { method, url },
      };
      const validate = config.validateStatus === undefined ? (s) => s >= 200 && s < 300 : config.validateStatus;
      if (!validate || validate(r.status)) return response;
      throw new AxiosError(
        `Request failed with status code ${r.status}`,
        r.status >= 500 ? 'ERR_BAD_RESPONSE' : 'ERR_BAD_REQUEST',
        config,
        response,
      );
    },
    (error) => { throw new AxiosError(error.message, 'ERR_NETWORK', config, undefined); },
  );
};

const create = (instanceDefaults) => {
  const defaults = mergeConfig({ headers: { common: {} } }, instanceDefaults);
  const interceptors = { request: interceptorList(), response: interceptorList() };
  const axios = function axios(urlOrConfig, config) {
    const own = typeof urlOrConfig === 'string' ? Object.assign({}, config, { url: urlOrConfig }) : urlOrConfig || {};
    let promise = Promise.resolve(mergeConfig(defaults, own));
    for (const h of interceptors.request.handlers.slice().reverse()) {
      if (h) promise = promise.then(h.fulfilled, h.rejected);
    }
    promise = promise.then(dispatch);
    for (const h of interceptors.response.handlers) {
      if (h) promise = promise.then(h.fulfilled, h.rejected);
    }
    return promise;
  };
  axios.request = (config) => axios(config);
  for (const method of ['get', 'delete', 'head', 'options']) {
    axios[method] = (url, config) => axios(Object.assign({}, config, { url, method }));
  }
  for (const method of ['post', 'put', 'patch']) {
    axios[method] = (url, data, config) => axios(Object.assign({}, config, { url, method, data }));
  }
  axios.defaults = defaults;
  axios.interceptors = interceptors;
  axios.create = (more) => create(mergeConfig(defaults, more));
  axios.isAxiosError = (e) => !!(e && e.isAxiosError);
  axios.AxiosError = AxiosError;
  axios.all = (list) => Promise.all(list);
  axios.spread = (f) => (list) => f(...list);
  axios.default = axios;
  return axios;
};

module.exports = create({});

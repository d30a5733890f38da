// npm's `node-fetch` (v2's CommonJS shape): the runtime's fetch, with Headers and Response.
const nodeFetch = (resource, init) => fetch(resource, init);
nodeFetch.default = nodeFetch;
nodeFetch.Headers = Headers;
nodeFetch.Response = Response;
nodeFetch.isRedirect = (code) => code === 301 || code === 302 || code === 303 || code === 307 || code === 308;
module.exports = nodeFetch;

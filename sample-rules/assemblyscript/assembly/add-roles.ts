// add-roles in AssemblyScript: the user's roles (app_metadata.roles, string entries only) go into
// both tokens as "https://wardstone.dev/roles" — the same rule as sample-rules/add-roles (Rust)
// and sample-rules/c, on rule ABI v1. Raw linear memory and a small JSON scanner that
// understands strings (escapes included), objects and arrays; the stub runtime (a bump
// allocator, no GC) suits an instance that lives for one execution.

// @ts-ignore: decorator
@external("wardstone", "log")
declare function wardstone_log(level: i32, ptr: usize, len: i32): void;

let input: usize = 0;
let inputLen: u32 = 0;
let out: usize = 0;
let outLen: u32 = 0;

// ABI v1: memory for the host to write into; never freed (the instance is thrown away).
export function alloc(len: i32): usize {
  return heap.alloc(<usize>len);
}

function at(i: u32): u8 {
  return load<u8>(input + i);
}

function ws(i: u32): u32 {
  while (i < inputLen) {
    const c = at(i);
    if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
    i++;
  }
  return i;
}

function skipString(i: u32): u32 {
  for (i++; i < inputLen; i++) {
    const c = at(i);
    if (c == 0x5c) i++;
    else if (c == 0x22) return i + 1;
  }
  return inputLen;
}

function skipValue(i: u32): u32 {
  i = ws(i);
  if (i >= inputLen) return inputLen;
  const c0 = at(i);
  if (c0 == 0x22) return skipString(i);
  if (c0 == 0x7b || c0 == 0x5b) {
    let depth = 0;
    while (i < inputLen) {
      const c = at(i);
      if (c == 0x22) { i = skipString(i); continue; }
      if (c == 0x7b || c == 0x5b) depth++;
      if (c == 0x7d || c == 0x5d) { depth--; if (depth == 0) return i + 1; }
      i++;
    }
    return inputLen;
  }
  while (i < inputLen) {
    const c = at(i);
    if (c == 0x2c || c == 0x7d || c == 0x5d) break;
    i++;
  }
  return i;
}

function keyIs(start: u32, end: u32, key: string): bool {
  if (<i32>(end - start) != key.length) return false;
  for (let k = 0; k < key.length; k++) {
    if (<u32>at(start + <u32>k) != <u32>key.charCodeAt(k)) return false;
  }
  return true;
}

// The value of member `key` of the object at i, or 0 when absent.
function member(i: u32, key: string): u32 {
  i = ws(i);
  if (i >= inputLen || at(i) != 0x7b) return 0;
  i = ws(i + 1);
  while (i < inputLen && at(i) == 0x22) {
    const kEnd = skipString(i);
    const hit = keyIs(i + 1, kEnd - 1, key);
    i = ws(kEnd);
    if (i >= inputLen || at(i) != 0x3a) return 0;
    i = ws(i + 1);
    if (hit) return i;
    i = ws(skipValue(i));
    if (i < inputLen && at(i) == 0x2c) i = ws(i + 1);
  }
  return 0;
}

function put(s: string): void {
  for (let k = 0; k < s.length; k++) {
    store<u8>(out + outLen, <u8>s.charCodeAt(k));
    outLen++;
  }
}

function putRaw(from: u32, to: u32): void {
  memory.copy(out + outLen, input + from, to - from);
  outLen += to - from;
}

function putRoles(i: u32): void {
  put("[");
  let first = true;
  i = ws(i);
  if (i != 0 && i < inputLen && at(i) == 0x5b) {
    i = ws(i + 1);
    while (i < inputLen && at(i) != 0x5d) {
      const end = skipValue(i);
      if (at(i) == 0x22) {
        if (!first) put(",");
        putRaw(i, end);
        first = false;
      }
      i = ws(end);
      if (i < inputLen && at(i) == 0x2c) i = ws(i + 1);
    }
  }
  put("]");
}

export function rule(ptr: usize, len: i32): i64 {
  input = ptr;
  inputLen = <u32>len;
  const user = member(0, "user");
  const meta = user != 0 ? member(user, "app_metadata") : 0;
  const roles = meta != 0 ? member(meta, "roles") : 0;
  out = heap.alloc(<usize>(2 * len + 256));
  outLen = 0;
  put('{"context":{"idToken":{"https://wardstone.dev/roles":');
  putRoles(roles);
  put('},"accessToken":{"https://wardstone.dev/roles":');
  putRoles(roles);
  put("}}}");
  const msg = "roles added (AssemblyScript)";
  const buf = String.UTF8.encode(msg);
  wardstone_log(1, changetype<usize>(buf), buf.byteLength);
  return (<i64>out << 32) | <i64>outLen;
}

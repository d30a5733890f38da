/*
 * add-roles in C: the user's roles (app_metadata.roles, string entries only) go into both
 * tokens as "https://wardstone.dev/roles" — the same rule as sample-rules/add-roles (Rust), to
 * show that rule ABI v1 is language-neutral. No libc: a bump allocator and a small JSON scanner
 * that understands strings (escapes included), objects and arrays.
 *
 *   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export=alloc -Wl,--export=rule \
 *         -o add_roles.wasm add_roles.c
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

__attribute__((import_module("wardstone"), import_name("log")))
void wardstone_log(int level, const u8 *ptr, int len);

extern u8 __heap_base;
static u32 next_free = 0;

/* ABI v1: memory for the host to write the input into. Never freed: the instance is thrown
 * away after one execution. */
__attribute__((export_name("alloc")))
u8 *alloc(int len) {
    if (next_free == 0) next_free = (u32)&__heap_base;
    u32 at = (next_free + 7) & ~7u;
    u32 end = at + (u32)len;
    u32 have = __builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        if (__builtin_wasm_memory_grow(0, (end - have + 65535) / 65536) == (u32)-1) return 0;
    }
    next_free = end;
    return (u8 *)at;
}

static const u8 *in;
static u32 in_len;

static u32 ws(u32 i) {
    while (i < in_len && (in[i] == ' ' || in[i] == '\n' || in[i] == '\r' || in[i] == '\t')) i++;
    return i;
}

/* i at the opening quote; returns the index after the closing quote. */
static u32 skip_string(u32 i) {
    for (i++; i < in_len; i++) {
        if (in[i] == '\\') i++;
        else if (in[i] == '"') return i + 1;
    }
    return in_len;
}

/* Skips one value starting at i (after whitespace); returns the index after it. */
static u32 skip_value(u32 i) {
    i = ws(i);
    if (i >= in_len) return in_len;
    if (in[i] == '"') return skip_string(i);
    if (in[i] == '{' || in[i] == '[') {
        int depth = 0;
        while (i < in_len) {
            u8 c = in[i];
            if (c == '"') { i = skip_string(i); continue; }
            if (c == '{' || c == '[') depth++;
            if (c == '}' || c == ']') { depth--; if (depth == 0) return i + 1; }
            i++;
        }
        return in_len;
    }
    while (i < in_len && in[i] != ',' && in[i] != '}' && in[i] != ']') i++;
    return i;
}

static int key_is(u32 start, u32 end, const char *key) {
    /* start..end is the key's raw text between its quotes. */
    u32 k = 0;
    for (u32 i = start; i < end; i++, k++) {
        if (key[k] == 0 || (u8)key[k] != in[i]) return 0;
    }
    return key[k] == 0;
}

/* The value of member `key` of the object at i, or 0 when absent or i is not an object. */
static u32 member(u32 i, const char *key) {
    i = ws(i);
    if (i >= in_len || in[i] != '{') return 0;
    i = ws(i + 1);
    while (i < in_len && in[i] == '"') {
        u32 k_end = skip_string(i);
        int hit = key_is(i + 1, k_end - 1, key);
        i = ws(k_end);
        if (i >= in_len || in[i] != ':') return 0;
        i = ws(i + 1);
        if (hit) return i;
        i = ws(skip_value(i));
        if (i < in_len && in[i] == ',') i = ws(i + 1);
    }
    return 0;
}

static u8 *out;
static u32 out_len;

static void put(const char *s) {
    while (*s) out[out_len++] = (u8)*s++;
}

static void put_raw(u32 from, u32 to) {
    for (u32 i = from; i < to; i++) out[out_len++] = in[i];
}

/* Writes the string entries of the array at i as a JSON array. */
static void put_roles(u32 i) {
    put("[");
    int first = 1;
    i = ws(i);
    if (i && i < in_len && in[i] == '[') {
        i = ws(i + 1);
        while (i < in_len && in[i] != ']') {
            u32 end = skip_value(i);
            if (in[i] == '"') {
                if (!first) put(",");
                put_raw(i, end);
                first = 0;
            }
            i = ws(end);
            if (i < in_len && in[i] == ',') i = ws(i + 1);
        }
    }
    put("]");
}

__attribute__((export_name("rule")))
u64 rule(u8 *ptr, int len) {
    in = ptr;
    in_len = (u32)len;
    u32 user = member(0, "user");
    u32 meta = user ? member(user, "app_metadata") : 0;
    u32 roles = meta ? member(meta, "roles") : 0;
    /* The output holds the roles twice plus ~100 bytes. */
    out = alloc(2 * (int)in_len + 256);
    out_len = 0;
    put("{\"context\":{\"idToken\":{\"https://wardstone.dev/roles\":");
    put_roles(roles);
    put("},\"accessToken\":{\"https://wardstone.dev/roles\":");
    put_roles(roles);
    put("}}}");
    static const char msg[] = "roles added (C)";
    wardstone_log(1, (const u8 *)msg, sizeof msg - 1);
    return ((u64)(u32)out << 32) | out_len;
}

//! Rule ABI v1 on the host side: the checks an upload passes before it is compiled, and the
//! calls into an instance (its `alloc`, writing the input, calling an export, reading the
//! output back). Every failure is a typed [`Failure`], never a panic.

use wasmtime::{ExternType, Module, Store, Trap, ValType};

use super::host::HostState;
use super::{CompiledRule, Rejected};
use crate::domain::execution::Failure;
use crate::rules::Limits;

pub(crate) fn root_cause(e: &wasmtime::Error) -> String {
    e.chain()
        .last()
        .map(|c| c.to_string())
        .unwrap_or_else(|| e.to_string())
}

pub(crate) fn classify(e: wasmtime::Error) -> Failure {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::Fuel,
        Some(Trap::Interrupt) => Failure::Timeout,
        Some(Trap::StackOverflow) => Failure::StackOverflow,
        Some(t) => Failure::Trap(t.to_string()),
        None => Failure::Trap(root_cause(&e)),
    }
}

/// An instance of `rule` with its memory and `alloc`.
pub(crate) struct Instance {
    pub(crate) instance: wasmtime::Instance,
    memory: wasmtime::Memory,
    alloc: wasmtime::TypedFunc<i32, i32>,
}

pub(crate) fn instantiate(
    store: &mut Store<HostState>,
    rule: &CompiledRule,
) -> Result<Instance, Failure> {
    let instance = rule.pre.instantiate(&mut *store).map_err(classify)?;
    let [memory, alloc, _] = &rule.exports;
    let memory = instance
        .get_module_export(&mut *store, memory)
        .and_then(|e| e.into_memory())
        .ok_or_else(|| Failure::Abi("missing export memory".into()))?;
    let alloc = instance
        .get_module_export(&mut *store, alloc)
        .and_then(|e| e.into_func())
        .and_then(|f| f.typed::<i32, i32>(&*store).ok())
        .ok_or_else(|| Failure::Abi("missing export alloc(i32) -> i32".into()))?;
    Ok(Instance {
        instance,
        memory,
        alloc,
    })
}

impl Instance {
    pub(crate) fn memory(&self) -> wasmtime::Memory {
        self.memory
    }

    /// Copies `bytes` into memory the guest allocated; returns their location.
    pub(crate) fn write(
        &self,
        store: &mut Store<HostState>,
        bytes: &[u8],
    ) -> Result<(i32, i32), Failure> {
        let len =
            i32::try_from(bytes.len()).map_err(|_| Failure::BadOutput("input too large".into()))?;
        let ptr = self.alloc.call(&mut *store, len).map_err(classify)?;
        self.memory
            .write(&mut *store, ptr as u32 as usize, bytes)
            .map_err(|_| {
                Failure::Abi(format!(
                    "alloc returned {ptr}, which is not {len} writable bytes"
                ))
            })?;
        Ok((ptr, len))
    }

    pub(crate) fn func<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &self,
        store: &mut Store<HostState>,
        export: &wasmtime::ModuleExport,
        signature: &str,
    ) -> Result<wasmtime::TypedFunc<P, R>, Failure> {
        self.instance
            .get_module_export(&mut *store, export)
            .and_then(|e| e.into_func())
            .and_then(|f| f.typed::<P, R>(&*store).ok())
            .ok_or_else(|| Failure::Abi(format!("missing export {signature}")))
    }

    /// Calls `export(ptr, len) -> (out_ptr << 32) | out_len` on `input` and returns the output
    /// bytes, at most `output_cap` of them.
    pub(crate) fn call(
        &self,
        store: &mut Store<HostState>,
        export: &wasmtime::ModuleExport,
        input: &[u8],
        output_cap: usize,
    ) -> Result<Vec<u8>, Failure> {
        let entry = self.func::<(i32, i32), i64>(store, export, "rule(i32, i32) -> i64")?;
        let (ptr, len) = self.write(store, input)?;
        let packed = entry.call(&mut *store, (ptr, len)).map_err(classify)?;
        self.output(store, packed, output_cap)
    }

    /// The bytes at the `(ptr << 32) | len` a guest returned, at most `output_cap` of them.
    pub(crate) fn output(
        &self,
        store: &Store<HostState>,
        packed: i64,
        output_cap: usize,
    ) -> Result<Vec<u8>, Failure> {
        let (out_ptr, out_len) = (
            (packed as u64 >> 32) as usize,
            (packed as u64 & 0xffff_ffff) as usize,
        );
        if out_len > output_cap {
            return Err(Failure::BadOutput(format!(
                "output is {out_len} bytes, larger than the {output_cap} byte limit"
            )));
        }
        let data = self.memory.data(store);
        out_ptr
            .checked_add(out_len)
            .and_then(|end| data.get(out_ptr..end))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                Failure::BadOutput(format!(
                    "output [{out_ptr}, +{out_len}) is outside linear memory"
                ))
            })
    }
}

/// An output as the JSON object it must be.
pub(crate) fn output_object(
    bytes: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    match serde_json::from_slice(bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::BadOutput("output is not a JSON object".into())),
        Err(e) => Err(Failure::BadOutput(format!("output is not JSON: {e}"))),
    }
}

pub(crate) fn check_abi(module: &Module) -> Result<(), Rejected> {
    for import in module.imports() {
        let ExternType::Func(f) = import.ty() else {
            return Err(Rejected(format!(
                "import {}::{} is not allowed",
                import.module(),
                import.name()
            )));
        };
        let params: Vec<bool> = f.params().map(|p| matches!(p, ValType::I32)).collect();
        let results: Vec<bool> = f.results().map(|r| matches!(r, ValType::I64)).collect();
        match (import.module(), import.name()) {
            ("wardstone", "log") => {
                if params != [true, true, true] || !results.is_empty() {
                    return Err(Rejected(
                        "import wardstone::log must have the signature (i32, i32, i32) -> ()"
                            .into(),
                    ));
                }
            }
            ("wardstone", "http_fetch") => {
                if params != [true, true] || results != [true] {
                    return Err(Rejected(
                        "import wardstone::http_fetch must have the signature (i32, i32) -> i64"
                            .into(),
                    ));
                }
            }
            (m, n) => return Err(Rejected(format!("import {m}::{n} is not allowed"))),
        }
    }
    let func = |name: &str, params: &[&str], result: &str| -> Result<(), Rejected> {
        let sig = format!("{name}({}) -> {result}", params.join(", "));
        match module.get_export(name) {
            Some(ExternType::Func(f)) => {
                let ps: Vec<String> = f.params().map(|p| p.to_string()).collect();
                let rs: Vec<String> = f.results().map(|r| r.to_string()).collect();
                if ps != params || rs != [result] {
                    return Err(Rejected(format!(
                        "export {name} has the signature ({}) -> ({}); ABI v1 requires {sig}",
                        ps.join(", "),
                        rs.join(", ")
                    )));
                }
                Ok(())
            }
            Some(_) => Err(Rejected(format!("export {name} must be a function {sig}"))),
            None => Err(Rejected(format!("missing export {sig}"))),
        }
    };
    match module.get_export("memory") {
        Some(ExternType::Memory(m)) if !m.is_64() && !m.is_shared() => {}
        Some(ExternType::Memory(_)) => {
            return Err(Rejected(
                "export memory must be a 32-bit, non-shared memory".into(),
            ));
        }
        _ => return Err(Rejected("missing export memory".into())),
    }
    func("alloc", &["i32"], "i32")?;
    func("rule", &["i32", "i32"], "i64")?;
    Ok(())
}

/// Cheap checks before compiling: a component, oversized function bodies (compile time grows
/// with them) and absurd function counts are refused without spending a compile.
pub(crate) fn precheck(limits: &Limits, bytes: &[u8]) -> Result<(), Rejected> {
    use wasmparser::{Parser, Payload};
    if !bytes.starts_with(b"\0asm") {
        return Err(Rejected("not a wasm module".into()));
    }
    let mut functions = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| Rejected(format!("invalid wasm module: {e}")))?;
        match payload {
            Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => {
                return Err(Rejected(
                    "components are not supported; upload a core wasm module".into(),
                ));
            }
            Payload::CodeSectionEntry(body) => {
                let size = body.range().len();
                if size > limits.function_body_bytes {
                    return Err(Rejected(format!(
                        "function {functions} has a {size} byte body, larger than the {} byte limit",
                        limits.function_body_bytes
                    )));
                }
                functions += 1;
            }
            _ => {}
        }
    }
    if functions > 50_000 {
        return Err(Rejected(format!(
            "module has {functions} functions; at most 50000 are allowed"
        )));
    }
    Ok(())
}

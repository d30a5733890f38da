//! The built-in modules (see `modules/`): the server's build script bundles each
//! `modules/entries/<name>.js` with esbuild into a directory and passes its path in
//! `WARDSTONE_JS_MODULES`; this writes `modules.rs`, the list the runtime compiles at
//! initialization (`+` in a file name stands for `/` in the module name). Without it the
//! runtime has no bundled modules, and `require` offers only what the prelude defines.
use std::fmt::Write;

fn main() {
    println!("cargo::rerun-if-env-changed=WARDSTONE_JS_MODULES");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("modules.rs");
    let mut list = Vec::new();
    if let Ok(dir) = std::env::var("WARDSTONE_JS_MODULES")
        && !dir.is_empty()
    {
        println!("cargo::rerun-if-changed={dir}");
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {dir}: {e}")) {
            let path = entry.expect("directory entry").path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".js"))
            else {
                continue;
            };
            println!("cargo::rerun-if-changed={}", path.display());
            list.push((name.replace('+', "/"), path.display().to_string()));
        }
    }
    list.sort();
    let mut code = String::from("static MODULE_SOURCES: &[(&str, &str)] = &[\n");
    for (name, path) in &list {
        writeln!(code, "    ({name:?}, include_str!({path:?})),").expect("write to a string");
    }
    code.push_str("];\n");
    std::fs::write(&out, code).expect("cannot write modules.rs");
}

//! The bundled npm modules (see `modules/`): the server's build script bundles them and
//! passes the bundle's path in `WARDSTONE_JS_MODULES`; without it the runtime is built with
//! none (an empty bundle), and `require` offers only what the prelude defines.
fn main() {
    println!("cargo::rerun-if-env-changed=WARDSTONE_JS_MODULES");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("modules.js");
    let bundle = match std::env::var("WARDSTONE_JS_MODULES") {
        Ok(path) if !path.is_empty() => {
            println!("cargo::rerun-if-changed={path}");
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read the modules bundle {path}: {e}"))
        }
        _ => String::new(),
    };
    std::fs::write(&out, bundle).expect("cannot write the modules bundle");
}

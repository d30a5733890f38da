//! Logging to the rule's execution log (`wardstone.log`). Lines are kept with the execution
//! record the tenant reads; natively they go to stderr.

/// Log level of ABI v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    /// 0.
    Debug = 0,
    /// 1.
    Info = 1,
    /// 2.
    Warn = 2,
    /// 3.
    Error = 3,
}

#[cfg(target_arch = "wasm32")]
mod sys {
    #[link(wasm_import_module = "wardstone")]
    unsafe extern "C" {
        pub fn log(level: i32, ptr: i32, len: i32);
    }
}

/// Writes a line at `level`.
pub fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the pointer and length describe a live UTF-8 slice for the duration of the call.
    unsafe {
        sys::log(level as i32, message.as_ptr() as i32, message.len() as i32)
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Debug line.
pub fn debug(message: &str) {
    write(Level::Debug, message)
}

/// Info line.
pub fn info(message: &str) {
    write(Level::Info, message)
}

/// Warning line.
pub fn warn(message: &str) {
    write(Level::Warn, message)
}

/// Error line.
pub fn error(message: &str) {
    write(Level::Error, message)
}

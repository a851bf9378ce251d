//! Scratch resources for tests that need no chain: free loopback ports and temporary
//! directories removed on drop. Kept apart from `support` so the SVM tests, which do not
//! build the EVM side, can use them too.

#![allow(dead_code)]

use std::path::PathBuf;

pub use x402_testkit::free_port;

/// A fresh directory under the system temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("x402-{tag}-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

//! EVM chain support (exact scheme); filled in by the EVM work.

//! The Solana node client: the shared JSON-RPC client with failover.

pub use x402_settlement::failover::RpcUnavailable;
pub use x402_settlement::jsonrpc::{JsonRpc as SolanaRpc, NodeError};

//! A relay a test switches off and on, to take a dependency away from a running facilitator.

use std::sync::Arc;

use tokio::net::TcpListener;

/// A TCP relay on a loopback port that a test can switch off and on again, to take a
/// dependency (an RPC node, the ledger's database) away from a running facilitator and give
/// it back. Off: every relayed connection is cut and the port refuses new ones, as an
/// unreachable host does; on: the same port listens again.
pub struct SwitchProxy {
    /// `host:port` the relay listens on.
    pub address: String,
    upstream: Arc<std::sync::Mutex<String>>,
    on: tokio::sync::watch::Sender<bool>,
}

impl SwitchProxy {
    /// Starts relaying to `upstream` (`host:port`; may be set later with [`Self::point_at`]).
    pub async fn start(upstream: &str) -> SwitchProxy {
        let first = relay_listener("127.0.0.1:0".parse().unwrap());
        let local = first.local_addr().expect("addr");
        let upstream = Arc::new(std::sync::Mutex::new(upstream.to_owned()));
        let (on, mut watch) = tokio::sync::watch::channel(true);
        let target = upstream.clone();
        let relays = watch.clone();
        tokio::spawn(async move {
            let mut listener = Some(first);
            loop {
                if watch.wait_for(|on| *on).await.is_err() {
                    return;
                }
                let current = match listener.take() {
                    Some(l) => l,
                    None => relay_listener(local),
                };
                loop {
                    tokio::select! {
                        accepted = current.accept() => {
                            let Ok((mut inbound, _)) = accepted else { return };
                            let address = target.lock().unwrap().clone();
                            let mut off = relays.clone();
                            tokio::spawn(async move {
                                let Ok(mut outbound) = tokio::net::TcpStream::connect(address).await else {
                                    return;
                                };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                    _ = off.wait_for(|on| !*on) => {}
                                }
                            });
                        }
                        changed = watch.wait_for(|on| !*on) => {
                            if changed.is_err() {
                                return;
                            }
                            break; // the listener is dropped: the port refuses connections
                        }
                    }
                }
            }
        });
        SwitchProxy {
            address: local.to_string(),
            upstream,
            on,
        }
    }

    /// `http://` URL of the relay, for RPC endpoints.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Relays new connections to `upstream` (`host:port`) from now on.
    pub fn point_at(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = upstream.to_owned();
    }

    /// Switches the relay on or off.
    pub fn set(&self, on: bool) {
        self.on.send_replace(on);
    }
}

/// A listening socket at `address` that can be bound again right after it was closed.
fn relay_listener(address: std::net::SocketAddr) -> TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(address).expect("bind the relay port");
    socket.listen(128).expect("listen")
}

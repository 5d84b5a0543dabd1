//! A TCP proxy between the app and its database that a test cuts and restores: a network
//! fault without touching the database server the other tests share.
//!
//! Cut, it closes every connection it carries and holds new ones open without forwarding a
//! byte, as a network partition does: a client connecting waits until its own timeout gives
//! up, the worst case for a service that must not hang. Restored, it drops the held
//! connections and forwards again.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct TcpProxy {
    pub address: SocketAddr,
    up: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        // The forwarding tasks end with the cut.
        self.up.send_replace(false);
    }
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy port");
        let address = listener.local_addr().unwrap();
        let (up, watch) = watch::channel(true);
        let task = tokio::spawn(serve(listener, target, watch));
        Self { address, up, task }
    }

    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn restore(&self) {
        self.up.send_replace(true);
    }
}

async fn serve(listener: TcpListener, target: SocketAddr, mut up: watch::Receiver<bool>) {
    // Connections accepted while cut: held, never answered, dropped on restore.
    let mut held: Vec<TcpStream> = Vec::new();
    loop {
        tokio::select! {
            changed = up.changed() => {
                if changed.is_err() {
                    return;
                }
                if *up.borrow() {
                    held.clear();
                }
            }
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                if !*up.borrow() {
                    held.push(client);
                    continue;
                }
                tokio::spawn(forward(client, target, up.clone()));
            }
        }
    }
}

/// Carries one connection until either side closes it or the proxy is cut.
async fn forward(mut client: TcpStream, target: SocketAddr, mut up: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}

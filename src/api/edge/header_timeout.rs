//! A deadline for request heads (`server.header_read_timeout_seconds`), against slowloris:
//! clients that open connections and send their headers a byte at a time to hold them open.
//!
//! poem 3.1 builds hyper without a timer, so hyper's own header timeout never runs; this wraps
//! each accepted connection instead. Once the first byte of a request head arrives, the blank
//! line that ends it must follow within the timeout, or the connection is closed. The clock
//! stops at the end of the head (the body is `server.request_timeout_seconds`' business) and
//! re-arms with the first byte after the response has started. A silent connection is left to
//! the idle timeout. HTTP/2 connections (prior knowledge) are passed through untouched: their
//! headers come in frames, and hyper bounds those itself.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

const END_OF_HEAD: &[u8] = b"\r\n\r\n";
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

/// Wraps an acceptor so that every connection it accepts has the head deadline.
pub struct HeaderTimeout<A> {
    inner: A,
    timeout: Duration,
}

impl<A> HeaderTimeout<A> {
    pub fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A: Acceptor> Acceptor for HeaderTimeout<A> {
    type Io = HeadDeadline<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok((HeadDeadline::new(io, self.timeout), local, remote, scheme))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests: nothing to time.
    Idle,
    /// A head has begun and has not ended.
    ReadingHead,
    /// The head is in; the body (if any) and the response follow.
    InRequest,
    /// HTTP/2: not ours to time.
    Untimed,
}

/// A connection whose request heads must arrive within a deadline.
pub struct HeadDeadline<T> {
    inner: T,
    timeout: Duration,
    phase: Phase,
    deadline: Option<Pin<Box<Sleep>>>,
    /// The last bytes read, so an end of head split across two reads is still seen.
    tail: Vec<u8>,
    first_read: bool,
}

impl<T> HeadDeadline<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            phase: Phase::Idle,
            deadline: None,
            tail: Vec::with_capacity(END_OF_HEAD.len() * 2),
            first_read: true,
        }
    }

    /// Follows the request heads through the bytes just read.
    fn observe(&mut self, bytes: &[u8]) {
        if std::mem::take(&mut self.first_read) && bytes.starts_with(HTTP2_PREFACE) {
            self.phase = Phase::Untimed;
        }
        match self.phase {
            Phase::Untimed | Phase::InRequest => return,
            Phase::Idle => {
                self.phase = Phase::ReadingHead;
                self.deadline = Some(Box::pin(tokio::time::sleep(self.timeout)));
                self.tail.clear();
            }
            Phase::ReadingHead => {}
        }
        self.tail.extend_from_slice(bytes);
        if self
            .tail
            .windows(END_OF_HEAD.len())
            .any(|w| w == END_OF_HEAD)
        {
            self.phase = Phase::InRequest;
            self.deadline = None;
        }
        let keep = self.tail.len().saturating_sub(END_OF_HEAD.len() - 1);
        self.tail.drain(..keep);
    }

    /// A response is being written: the next bytes read begin a new head. Interim answers
    /// (`100 Continue`) come before the body, so they do not count.
    fn observe_write(&mut self, bytes: &[u8]) {
        if self.phase == Phase::InRequest && !bytes.starts_with(b"HTTP/1.1 1") {
            self.phase = Phase::Idle;
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.phase == Phase::ReadingHead
            && self
                .deadline
                .as_mut()
                .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready())
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "request head not received in time")
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.observe(&buf.filled()[before..]);
                // Bytes that keep trickling in do not move the deadline.
                if this.expired(cx) {
                    return Poll::Ready(Err(timed_out()));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.observe_write(buf);
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            this.observe_write(first);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> HeadDeadline<()> {
        HeadDeadline::new((), Duration::from_secs(10))
    }

    #[tokio::test]
    async fn heads_are_followed_across_reads_and_requests() {
        let mut c = conn();
        c.observe(b"GET / HTTP/1.1\r\nHost: x\r");
        assert_eq!(c.phase, Phase::ReadingHead);
        c.observe(b"\n\r");
        assert_eq!(c.phase, Phase::ReadingHead);
        c.observe(b"\n");
        assert_eq!(c.phase, Phase::InRequest);
        // Body bytes do not start a head; an interim answer does not end the request.
        c.observe(b"{\"a\": 1}");
        c.observe_write(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(c.phase, Phase::InRequest);
        c.observe_write(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(c.phase, Phase::Idle);
        c.observe(b"G");
        assert_eq!(c.phase, Phase::ReadingHead);
    }

    #[tokio::test]
    async fn http2_is_not_timed() {
        let mut c = conn();
        c.observe(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        c.observe(b"\x00\x00\x12\x04");
        assert_eq!(c.phase, Phase::Untimed);
    }
}

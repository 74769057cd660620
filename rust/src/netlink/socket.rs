//! Netlink sockets driven on the polling thread, and the request/answer loop shared by
//! route and generic netlink.
//!
//! Sockets are opened when the future is first polled (or by [`super::Writer::open`]), so
//! they belong to the network namespace of the thread that opens them
//! ([`super::Runtime::block_on`] polls on the caller's thread). The connection future is
//! not spawned: it is polled together with the work that uses it ([`drive`], or
//! [`drive_mut`] for a connection that serves several requests in turn), so nothing
//! outlives the call and no task hops threads.

use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_proto::sys::{AsyncSocket, SocketAddr};
use netlink_proto::{Connection, ConnectionHandle};

use super::error::{error_ext_ack, ext_ack_msg, NlError};

/// A dump is retried this many times when the kernel flags it as interrupted (the
/// object list changed while it was read, `NLM_F_DUMP_INTR`).
pub(crate) const DUMP_ATTEMPTS: usize = 3;

/// Opens a netlink socket of `protocol` (`NETLINK_ROUTE`, `NETLINK_GENERIC`).
pub(crate) fn open<T>(protocol: isize) -> Result<(Connection<T>, ConnectionHandle<T>), NlError>
where
    T: Debug + NetlinkSerializable + NetlinkDeserializable + Unpin,
{
    let (mut conn, handle, _unsolicited) =
        netlink_proto::new_connection(protocol).map_err(NlError::Io)?;
    // The end of a dump and the ack of a request are how `request` knows the answer is
    // complete, and a failed dump's errno travels in its NLMSG_DONE.
    conn.set_forward_done(true);
    conn.set_forward_ack(true);
    let socket = conn.socket_mut().socket_mut();
    // Best effort: extended acks only make error messages better ("limit greater than
    // maximum"); capping the echoed request keeps error answers small.
    let _ = socket.set_ext_ack(true);
    let _ = socket.set_cap_ack(true);
    Ok((conn, handle))
}

/// Opens a route socket with `NETLINK_GET_STRICT_CHK`: the kernel then honours the
/// filters of a dump request's header (an `RTM_GETADDR` dump of one `ifa_index`) and
/// refuses malformed requests instead of ignoring what it does not understand.
/// Best effort, like the acks: a kernel older than 4.20 dumps everything, which the
/// callers filter again.
pub(crate) fn open_strict<T>(
    protocol: isize,
) -> Result<(Connection<T>, ConnectionHandle<T>), NlError>
where
    T: Debug + NetlinkSerializable + NetlinkDeserializable + Unpin,
{
    let (mut conn, handle) = open(protocol)?;
    let _ = conn
        .socket_mut()
        .socket_mut()
        .set_netlink_get_strict_chk(true);
    Ok((conn, handle))
}

/// Runs `work` while polling `conn`, on the current thread; returns when `work` is done.
pub(crate) async fn drive<T, F>(mut conn: Connection<T>, work: F) -> F::Output
where
    T: Debug + NetlinkSerializable + NetlinkDeserializable + Unpin,
    F: Future,
{
    drive_mut(&mut conn, work).await
}

/// [`drive`] on a borrowed connection, which stays usable for the next request: the
/// connection only makes progress while some `drive_mut` polls it, and a request whose
/// answer was read to its end leaves nothing behind in it.
///
/// If `work` is dropped before it is done, its request may still be queued in the
/// connection and go out at the next `drive_mut`: a caller that lets that happen must
/// stop using the connection ([`super::Writer`] does).
pub(crate) async fn drive_mut<T, F>(conn: &mut Connection<T>, work: F) -> F::Output
where
    T: Debug + NetlinkSerializable + NetlinkDeserializable + Unpin,
    F: Future,
{
    let work = pin!(work);
    // `Connection` is `Unpin`, so `&mut Connection` is a future of its own.
    match select(work, conn).await {
        Either::Left((out, _conn)) => out,
        // The socket failed: pending answers end without their final message, which
        // `request` reports as an error.
        Either::Right(((), work)) => work.await,
    }
}

/// How the answer to a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The kernel flagged the dump as inconsistent (`NLM_F_DUMP_INTR`).
    pub interrupted: bool,
}

/// Sends a dump request and hands every message of the answer to `each`, as it arrives.
pub(crate) async fn dump<T>(
    handle: &ConnectionHandle<T>,
    payload: T,
    each: impl FnMut(T),
) -> Result<Answer, NlError>
where
    T: Debug,
{
    request(handle, payload, NLM_F_REQUEST | NLM_F_DUMP, each).await
}

/// Sends a request that the kernel acknowledges; replies before the ack go to `each`.
pub(crate) async fn ack<T>(
    handle: &ConnectionHandle<T>,
    payload: T,
    flags: u16,
    each: impl FnMut(T),
) -> Result<(), NlError>
where
    T: Debug,
{
    request(handle, payload, NLM_F_REQUEST | NLM_F_ACK | flags, each)
        .await
        .map(|_| ())
}

/// Sends `payloads` as one datagram of plain requests (`NLM_F_REQUEST`, no ack, no dump):
/// the kernel runs them one after the other inside one `sendmsg` and answers each with one
/// message, its reply or its error, in order; `each(i, answer)` gets the answer to the
/// `i`-th. A batch saves a round trip per request over [`ack`]; keep it small enough that
/// its replies fit the socket's receive buffer (the kernel drops what does not fit).
pub(crate) async fn batch<T>(
    handle: &ConnectionHandle<T>,
    payloads: impl IntoIterator<Item = T>,
    mut each: impl FnMut(usize, Result<T, NlError>),
) -> Result<(), NlError>
where
    T: Debug,
{
    let msgs: Vec<_> = payloads
        .into_iter()
        .map(|payload| {
            let mut msg = NetlinkMessage::new(
                NetlinkHeader::default(),
                NetlinkPayload::InnerMessage(payload),
            );
            msg.header.flags = NLM_F_REQUEST;
            msg
        })
        .collect();
    let expected = msgs.len();
    if expected == 0 {
        return Ok(());
    }
    let answer = handle
        .request_batch(msgs, SocketAddr::new(0, 0))
        .map_err(|e| NlError::Io(std::io::Error::other(e.to_string())))?;
    let mut answer = pin!(answer);
    let mut answered = 0;
    while let Some(msg) = answer.next().await {
        let outcome = match msg.payload {
            NetlinkPayload::InnerMessage(inner) => Ok(inner),
            NetlinkPayload::Error(err) => match err.code {
                // An ack: not asked for; nothing to hand over.
                None => continue,
                Some(code) => Err(NlError::kernel(
                    code.get().saturating_abs(),
                    error_ext_ack(msg.header.flags, &err.header),
                )),
            },
            NetlinkPayload::Overrun(_) => {
                return Err(NlError::Protocol("receive buffer overrun".into()))
            }
            _ => continue,
        };
        each(answered, outcome);
        answered += 1;
    }
    if answered < expected {
        return Err(NlError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("closed after {answered} of {expected} answers"),
        )));
    }
    Ok(())
}

async fn request<T>(
    handle: &ConnectionHandle<T>,
    payload: T,
    flags: u16,
    mut each: impl FnMut(T),
) -> Result<Answer, NlError>
where
    T: Debug,
{
    let mut msg = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::InnerMessage(payload),
    );
    msg.header.flags = flags;
    let answer = handle
        .request(msg, SocketAddr::new(0, 0))
        .map_err(|e| NlError::Io(std::io::Error::other(e.to_string())))?;
    let mut answer = pin!(answer);
    let mut interrupted = false;
    while let Some(msg) = answer.next().await {
        interrupted |= msg.header.flags & NLM_F_DUMP_INTR != 0;
        match msg.payload {
            NetlinkPayload::InnerMessage(inner) => each(inner),
            NetlinkPayload::Done(done) if done.code != 0 => {
                return Err(NlError::kernel(
                    done.code.saturating_abs(),
                    ext_ack_msg(&done.extended_ack),
                ))
            }
            NetlinkPayload::Done(_) => return Ok(Answer { interrupted }),
            NetlinkPayload::Error(err) => match err.code {
                None => return Ok(Answer { interrupted }),
                Some(code) => {
                    return Err(NlError::kernel(
                        code.get().saturating_abs(),
                        error_ext_ack(msg.header.flags, &err.header),
                    ))
                }
            },
            NetlinkPayload::Overrun(_) => {
                return Err(NlError::Protocol("receive buffer overrun".into()))
            }
            _ => {}
        }
    }
    Err(NlError::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "closed before the kernel's answer was complete",
    )))
}

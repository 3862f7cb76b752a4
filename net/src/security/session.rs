//! Who is on the other end of a connection.

use std::rc::Rc;

/// The principal of a connection that was not authenticated (PLAINTEXT, SSL without a
/// client certificate): Kafka's `User:ANONYMOUS`.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// A connection's identity, shared by its requests. Replaced whole when a SASL exchange
/// completes (the principal can never change after that: KIP-368 refuses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `User:alice`, or [`ANONYMOUS`].
    pub principal: Rc<str>,
    /// The client's IP address as ACL hosts write it (`127.0.0.1`).
    pub client_ip: Rc<str>,
    /// The listener the connection came in on (index into `BrokerConfig::listeners`).
    pub listener: usize,
}

impl Session {
    /// An unauthenticated connection on `listener`.
    pub fn anonymous(client_ip: Rc<str>, listener: usize) -> Self {
        Session { principal: ANONYMOUS.into(), client_ip, listener }
    }

    /// The same connection as `principal`.
    pub fn as_principal(&self, principal: &str) -> Self {
        Session { principal: principal.into(), ..self.clone() }
    }
}

//! The `listeners` and `super.users` settings, written as Kafka writes them.
//!
//! sluice names each listener by its security protocol (`SASL_SSL://:9094`); Kafka's
//! custom listener names with `listener.security.protocol.map` are not supported, so each
//! protocol is offered on one port at most.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// How a listener's connections are secured (Kafka's `SecurityProtocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL: every client is `User:ANONYMOUS`.
    #[default]
    Plaintext,
    /// TLS; the principal comes from the client certificate, if any.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, in Kafka's order.
    pub const VALUES: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name, as in `listeners` and `security.protocol`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients must authenticate with SASL before any other request.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses Kafka's name in any case, as Kafka's `SecurityProtocol.forName` does.
impl FromStr for SecurityProtocol {
    type Err = ListenerError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SecurityProtocol::VALUES
            .into_iter()
            .find(|protocol| protocol.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| ListenerError::UnknownProtocol(name.to_owned()))
    }
}

/// One entry of `listeners`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Listener {
    /// How its connections are secured.
    pub protocol: SecurityProtocol,
    /// Where to bind: empty for every interface, else an IPv4 address, a host name, or an
    /// IPv6 address (without the brackets it is written with).
    pub host: String,
    /// The TCP port; 0 lets the system pick one (tests).
    pub port: u16,
}

/// As written in `listeners`, e.g. `SASL_SSL://[::1]:9094`.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.protocol, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.protocol, self.host, self.port)
        }
    }
}

/// Parses `listeners`: `NAME://HOST:PORT` entries separated by commas, where NAME is a
/// security protocol and HOST may be empty (every interface), an IPv4 address, a host name
/// or a bracketed IPv6 address. Spaces around entries and empty entries are ignored. Each
/// protocol may appear once, and two listeners may not share a port other than 0.
pub fn parse_listeners(value: &str) -> Result<Vec<Listener>, ListenerError> {
    let mut listeners: Vec<Listener> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let listener = parse_listener(entry)?;
        if listeners.iter().any(|other| other.protocol == listener.protocol) {
            return Err(ListenerError::DuplicateProtocol(listener.protocol));
        }
        if listener.port != 0 && listeners.iter().any(|other| other.port == listener.port) {
            return Err(ListenerError::DuplicatePort(listener.port));
        }
        listeners.push(listener);
    }
    if listeners.is_empty() {
        return Err(ListenerError::Empty);
    }
    Ok(listeners)
}

fn parse_listener(entry: &str) -> Result<Listener, ListenerError> {
    let malformed = || ListenerError::Malformed(entry.to_owned());
    let (name, address) = entry.split_once("://").ok_or_else(malformed)?;
    let protocol = name.parse()?;
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        let (host, port) = bracketed.split_once("]:").ok_or_else(malformed)?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(ListenerError::InvalidHost { entry: entry.to_owned(), host: host.to_owned() });
        }
        (host, port)
    } else {
        let (host, port) = address.rsplit_once(':').ok_or_else(malformed)?;
        if !is_host_name_or_ipv4(host) {
            return Err(ListenerError::InvalidHost { entry: entry.to_owned(), host: host.to_owned() });
        }
        (host, port)
    };
    // Digits only: `u16::from_str` would also take a leading `+`.
    let port = Some(port)
        .filter(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|port| port.parse().ok())
        .ok_or_else(|| ListenerError::InvalidPort { entry: entry.to_owned(), port: port.to_owned() })?;
    Ok(Listener { protocol, host: host.to_owned(), port })
}

/// Empty (every interface), a dotted IPv4 address, or a DNS name's characters. Something
/// that looks like an IPv4 address must be one, so a typo such as `10.0.0.256` is caught
/// here rather than by a DNS lookup at bind time.
fn is_host_name_or_ipv4(host: &str) -> bool {
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !host.is_empty() {
        return host.parse::<Ipv4Addr>().is_ok();
    }
    host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// Why `listeners` cannot be used; the broker must not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenerError {
    /// No entries at all.
    #[error("listeners is empty: give at least one NAME://HOST:PORT, e.g. PLAINTEXT://:9092")]
    Empty,
    /// An entry that is not `NAME://HOST:PORT`.
    #[error("listener `{0}` is not NAME://HOST:PORT (write an IPv6 host in brackets: SSL://[::1]:9093)")]
    Malformed(String),
    /// A name that is no security protocol.
    #[error(
        "listener name `{0}` is not a security protocol: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL \
         (custom listener names are not supported)"
    )]
    UnknownProtocol(String),
    /// A host that is no IP address or host name.
    #[error("listener `{entry}` has an invalid host `{host}`: use a host name, an IPv4 address, [IPv6] or nothing for all interfaces")]
    InvalidHost {
        /// The whole entry.
        entry: String,
        /// The host part.
        host: String,
    },
    /// A port that is not a number from 0 to 65535.
    #[error("listener `{entry}` has an invalid port `{port}`: use a number from 0 to 65535")]
    InvalidPort {
        /// The whole entry.
        entry: String,
        /// The port part.
        port: String,
    },
    /// A protocol given twice.
    #[error("listeners names {0} twice: each security protocol may have one listener")]
    DuplicateProtocol(SecurityProtocol),
    /// A port given twice.
    #[error("listeners uses port {0} twice: each listener needs its own port")]
    DuplicatePort(u16),
}

/// Parses `super.users` into principals. Kafka separates them with `;`, since a
/// certificate's DN contains commas (`User:CN=a,OU=b`); a comma also separates them here
/// when the text after it starts a new principal (`Type:`, e.g. `User:`), so
/// `User:a,User:b` and `User:CN=a,OU=b;User:bob` both mean two principals (and a trailing
/// comma ends one). Entries are trimmed and empty ones dropped. Entries are not checked: one that is not `Type:name`
/// matches no session.
pub fn parse_super_users(value: &str) -> Vec<String> {
    let mut principals = Vec::new();
    for part in value.split(';') {
        let mut start = 0;
        for (comma, _) in part.match_indices(',') {
            let after = part.get(comma + 1..).unwrap_or_default();
            if starts_new_entry(after) {
                principals.push(part.get(start..comma).unwrap_or_default());
                start = comma + 1;
            }
        }
        principals.push(part.get(start..).unwrap_or_default());
    }
    principals.into_iter().map(str::trim).filter(|principal| !principal.is_empty()).map(str::to_owned).collect()
}

/// Whether the text after a comma starts a new entry: after spaces and further commas,
/// either nothing (a trailing comma) or `Word:` — a letter, then letters, digits, `_` or
/// `-`, then a colon. A DN's next attribute (`OU=b`) has `=` where a principal has `:`.
fn starts_new_entry(after_comma: &str) -> bool {
    let text = after_comma.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    let word_length = text.bytes().take_while(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-').count();
    text.is_empty()
        || (text.starts_with(|c: char| c.is_ascii_alphabetic()) && text.as_bytes().get(word_length) == Some(&b':'))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn listener(protocol: SecurityProtocol, host: &str, port: u16) -> Listener {
        Listener { protocol, host: host.to_owned(), port }
    }

    #[test]
    fn protocols_parse_in_any_case_and_know_their_layers() {
        assert_eq!("sasl_ssl".parse(), Ok(SecurityProtocol::SaslSsl));
        assert_eq!("Plaintext".parse(), Ok(SecurityProtocol::Plaintext));
        assert_eq!("TLS".parse::<SecurityProtocol>(), Err(ListenerError::UnknownProtocol("TLS".into())));
        let layers: Vec<_> = SecurityProtocol::VALUES.iter().map(|p| (p.uses_tls(), p.uses_sasl())).collect();
        assert_eq!(layers, [(false, false), (true, false), (false, true), (true, true)]);
        for protocol in SecurityProtocol::VALUES {
            assert_eq!(protocol.to_string().parse(), Ok(protocol));
        }
    }

    #[test]
    fn listeners_parse_every_host_form() {
        let parsed = parse_listeners(
            "PLAINTEXT://:9092, ssl://broker-1.example.com:9093,SASL_PLAINTEXT://10.0.0.1:9094 , SASL_SSL://[::1]:9095",
        )
        .unwrap();
        assert_eq!(
            parsed,
            [
                listener(SecurityProtocol::Plaintext, "", 9092),
                listener(SecurityProtocol::Ssl, "broker-1.example.com", 9093),
                listener(SecurityProtocol::SaslPlaintext, "10.0.0.1", 9094),
                listener(SecurityProtocol::SaslSsl, "::1", 9095),
            ]
        );
        let shown: Vec<_> = parsed.iter().map(Listener::to_string).collect();
        assert_eq!(
            shown,
            [
                "PLAINTEXT://:9092",
                "SSL://broker-1.example.com:9093",
                "SASL_PLAINTEXT://10.0.0.1:9094",
                "SASL_SSL://[::1]:9095"
            ]
        );
        assert_eq!(parse_listeners("SSL://[::]:0,").unwrap(), [listener(SecurityProtocol::Ssl, "::", 0)]);
    }

    #[test]
    fn malformed_entries_are_refused() {
        for value in ["PLAINTEXT:9092", "PLAINTEXT://9092", "PLAINTEXT//:9092", "SSL://[::1:9093", "SSL://[::1]9093"] {
            assert_eq!(parse_listeners(value), Err(ListenerError::Malformed(value.into())), "{value}");
        }
    }

    #[test]
    fn hosts_and_ports_are_checked() {
        for (value, host) in [
            ("SSL://::1:9093", "::1"),
            ("SSL://[not-v6]:9093", "not-v6"),
            ("SSL://10.0.0.256:9093", "10.0.0.256"),
            ("SSL://bad host:9093", "bad host"),
            ("SSL://a/b:9093", "a/b"),
        ] {
            assert_eq!(
                parse_listeners(value),
                Err(ListenerError::InvalidHost { entry: value.into(), host: host.into() }),
                "{value}"
            );
        }
        for (value, port) in
            [("SSL://:65536", "65536"), ("SSL://:-1", "-1"), ("SSL://:+1", "+1"), ("SSL://:", ""), ("SSL://:x", "x")]
        {
            assert_eq!(
                parse_listeners(value),
                Err(ListenerError::InvalidPort { entry: value.into(), port: port.into() }),
                "{value}"
            );
        }
    }

    #[test]
    fn names_must_be_protocols_used_once() {
        assert_eq!(parse_listeners("INTERNAL://:9092"), Err(ListenerError::UnknownProtocol("INTERNAL".into())));
        assert_eq!(
            parse_listeners("SSL://:9093,ssl://:9094"),
            Err(ListenerError::DuplicateProtocol(SecurityProtocol::Ssl))
        );
    }

    #[test]
    fn ports_are_not_shared_except_zero() {
        assert_eq!(parse_listeners("SSL://a:9093,SASL_SSL://b:9093"), Err(ListenerError::DuplicatePort(9093)));
        assert_eq!(parse_listeners("SSL://:0,SASL_SSL://:0").unwrap().len(), 2);
    }

    #[test]
    fn an_empty_value_is_refused() {
        assert_eq!(parse_listeners(""), Err(ListenerError::Empty));
        assert_eq!(parse_listeners(" , "), Err(ListenerError::Empty));
        assert!(ListenerError::Empty.to_string().contains("PLAINTEXT://:9092"));
    }

    #[test]
    fn super_users_split_on_semicolons_and_before_principals() {
        assert_eq!(parse_super_users("User:a,User:b"), ["User:a", "User:b"]);
        assert_eq!(parse_super_users("User:CN=a,OU=b;User:bob"), ["User:CN=a,OU=b", "User:bob"]);
        assert_eq!(
            parse_super_users("User:CN=a,OU=b, User:bob,Group:ops"),
            ["User:CN=a,OU=b", "User:bob", "Group:ops"]
        );
        assert_eq!(parse_super_users(" User:a ;; ,User:b; "), ["User:a", "User:b"]);
        assert_eq!(parse_super_users("User:CN=a\\,b,O=x:y"), ["User:CN=a\\,b,O=x:y"]);
        assert_eq!(parse_super_users("User:a,1x:b"), ["User:a,1x:b"]);
        assert_eq!(parse_super_users("User:a,,User:b,"), ["User:a", "User:b"]);
        assert!(parse_super_users("").is_empty());
        assert!(parse_super_users(" ; , ").is_empty());
    }

    proptest! {
        #[test]
        fn listener_parsing_never_panics(value in r"[A-Za-z_:/\[\]0-9.,é -]{0,40}") {
            if let Ok(listeners) = parse_listeners(&value) {
                let shown: Vec<_> = listeners.iter().map(Listener::to_string).collect();
                prop_assert_eq!(parse_listeners(&shown.join(",")), Ok(listeners));
            }
        }

        #[test]
        fn super_users_joined_with_either_separator_split_back(
            names in prop::collection::vec("[a-z]{1,8}", 1..5),
            semicolons in any::<bool>(),
        ) {
            let principals: Vec<String> = names.iter().map(|name| format!("User:{name}")).collect();
            let separator = if semicolons { ";" } else { "," };
            prop_assert_eq!(parse_super_users(&principals.join(separator)), principals);
        }
    }
}

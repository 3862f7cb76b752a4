//! The SASL mechanisms sluice speaks, by the names SaslHandshake carries and, for SCRAM, the
//! codes that KIP-554's DescribeUserScramCredentials and AlterUserScramCredentials carry.

/// A SASL mechanism a client can ask for in SaslHandshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// RFC 4616: the password travels in the clear, so only over TLS.
    Plain,
    /// RFC 7677.
    ScramSha256,
    /// RFC 5802 with SHA-512, as Kafka defines it (KIP-84).
    ScramSha512,
}

impl Mechanism {
    /// Every mechanism, in the order a SaslHandshake response lists them.
    pub const ALL: [Mechanism; 3] = [Mechanism::Plain, Mechanism::ScramSha256, Mechanism::ScramSha512];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => ScramMechanism::Sha256.name(),
            Mechanism::ScramSha512 => ScramMechanism::Sha512.name(),
        }
    }

    /// The mechanism a SaslHandshake names; exact and case-sensitive, as in Kafka, so a
    /// client that sends "plain" gets UNSUPPORTED_SASL_MECHANISM there too.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mechanism| mechanism.name() == name)
    }

    /// The SCRAM variant, or `None` for PLAIN.
    pub fn scram(self) -> Option<ScramMechanism> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha256 => Some(ScramMechanism::Sha256),
            Mechanism::ScramSha512 => Some(ScramMechanism::Sha512),
        }
    }
}

impl From<ScramMechanism> for Mechanism {
    fn from(mechanism: ScramMechanism) -> Self {
        match mechanism {
            ScramMechanism::Sha256 => Mechanism::ScramSha256,
            ScramMechanism::Sha512 => Mechanism::ScramSha512,
        }
    }
}

/// A SCRAM variant: what a stored credential belongs to. Kept apart from [`Mechanism`] so
/// that a credential can never be asked for PLAIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    /// Fewest iterations of Hi a credential may have (Kafka's `ScramMechanism`, RFC 7677's
    /// advice); the server refuses to use a weaker one.
    pub const MIN_ITERATIONS: u32 = 4096;
    /// Most iterations of Hi a credential may have (Kafka's `ScramMechanism`): PLAIN runs Hi
    /// on the shard for every login, so its cost stays bounded.
    pub const MAX_ITERATIONS: u32 = 16384;

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism named `name`, exactly as [`Mechanism::from_name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Mechanism::from_name(name).and_then(Mechanism::scram)
    }

    /// KIP-554's wire code (0 is UNKNOWN there, so it maps to no mechanism).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism with KIP-554's wire `code`.
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Bytes of the hash's output: the length of SaltedPassword, the keys and the proof.
    pub(crate) fn hash_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_exactly_and_case_sensitively() {
        for mechanism in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(mechanism.name()), Some(mechanism));
        }
        assert_eq!(Mechanism::ScramSha256.name(), "SCRAM-SHA-256");
        assert_eq!(Mechanism::from_name("plain"), None);
        assert_eq!(Mechanism::from_name("SCRAM-SHA-1"), None);
        assert_eq!(Mechanism::from_name("PLAIN "), None);
    }

    #[test]
    fn scram_codes_are_kip_554s() {
        assert_eq!(ScramMechanism::from_code(1), Some(ScramMechanism::Sha256));
        assert_eq!(ScramMechanism::from_code(2), Some(ScramMechanism::Sha512));
        assert_eq!(ScramMechanism::from_code(0), None);
        assert_eq!(ScramMechanism::from_code(3), None);
        for scram in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            assert_eq!(ScramMechanism::from_code(scram.code()), Some(scram));
            assert_eq!(ScramMechanism::from_name(scram.name()), Some(scram));
            assert_eq!(Mechanism::from(scram).scram(), Some(scram));
            assert_eq!(Mechanism::from(scram).name(), scram.name());
        }
        assert_eq!(Mechanism::Plain.scram(), None);
        assert_eq!(ScramMechanism::from_name("PLAIN"), None);
    }
}

//! What the Kafka load generator sends: message sizes, keys, and the send time carried in
//! each value so that a consumer can measure end-to-end latency.

use rand::rngs::SmallRng;
use rand::Rng;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bytes at the start of every value: the intended send time (u64 nanoseconds since the
/// Unix epoch) and the producer's message number (u64), both big-endian.
pub const VALUE_STAMP_BYTES: usize = 16;

/// How big each message value is.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SizeDistribution {
    /// Every value this many bytes.
    Fixed {
        /// Bytes.
        bytes: usize,
    },
    /// Uniformly between `min` and `max` bytes (inclusive).
    Uniform {
        /// Smallest.
        min: usize,
        /// Largest.
        max: usize,
    },
}

impl SizeDistribution {
    /// Parses `N` (fixed) or `uniform:MIN-MAX`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = |n: &str| n.trim().parse::<usize>().map_err(|e| format!("message size {text:?}: {e}"));
        let distribution = match text.split_once(':') {
            None => SizeDistribution::Fixed { bytes: number(text)? },
            Some(("uniform", range)) => {
                let (min, max) = range.split_once('-').ok_or_else(|| format!("{text:?}: use uniform:MIN-MAX"))?;
                SizeDistribution::Uniform { min: number(min)?, max: number(max)? }
            }
            _ => return Err(format!("unknown message size {text:?}: use N or uniform:MIN-MAX")),
        };
        let (min, max) = distribution.bounds();
        if min < VALUE_STAMP_BYTES || min > max {
            return Err(format!(
                "message size {text:?}: values carry a {VALUE_STAMP_BYTES}-byte send stamp, so sizes must be \
                 at least {VALUE_STAMP_BYTES} (and MIN ≤ MAX)"
            ));
        }
        Ok(distribution)
    }

    /// Smallest and largest value size.
    pub fn bounds(&self) -> (usize, usize) {
        match *self {
            SizeDistribution::Fixed { bytes } => (bytes, bytes),
            SizeDistribution::Uniform { min, max } => (min, max),
        }
    }

    /// Draws one value size.
    pub fn sample(&self, rng: &mut SmallRng) -> usize {
        match *self {
            SizeDistribution::Fixed { bytes } => bytes,
            SizeDistribution::Uniform { min, max } => rng.gen_range(min..=max),
        }
    }
}

/// Which key each message carries (and so, through Kafka's partitioner, its partition).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KeyDistribution {
    /// Null keys: the producer fills one partition's batch at a time, moving on after
    /// each batch (Kafka's sticky partitioner, KIP-480).
    None,
    /// Keys 0, 1, ..., count-1, then again.
    Sequential {
        /// Distinct keys.
        count: u64,
    },
    /// Keys drawn uniformly from `count` distinct keys.
    Uniform {
        /// Distinct keys.
        count: u64,
    },
    /// Keys drawn from a Zipf distribution over `count` keys with exponent `exponent`
    /// (a few hot keys, a long tail).
    Zipf {
        /// Distinct keys.
        count: u64,
        /// Skew; 1.0 is the classic Zipf law.
        exponent: f64,
        /// Cumulative probabilities of keys 0..count.
        #[serde(skip)]
        cumulative: std::sync::Arc<Vec<f64>>,
    },
}

/// Most distinct keys a Zipf distribution may have (its table is 8 bytes a key).
pub const ZIPF_KEYS_MAX: u64 = 10_000_000;

impl KeyDistribution {
    /// Parses `none`, `seq:N`, `uniform:N` or `zipf:N:EXPONENT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split(':');
        let kind = parts.next().unwrap_or_default();
        let count = |part: Option<&str>| -> Result<u64, String> {
            let n = part.ok_or_else(|| format!("{text:?}: missing key count"))?;
            let n = n.parse::<u64>().map_err(|e| format!("key count in {text:?}: {e}"))?;
            if n == 0 {
                return Err(format!("{text:?}: at least one key"));
            }
            Ok(n)
        };
        let distribution = match kind {
            "none" => KeyDistribution::None,
            "seq" => KeyDistribution::Sequential { count: count(parts.next())? },
            "uniform" => KeyDistribution::Uniform { count: count(parts.next())? },
            "zipf" => {
                let count = count(parts.next())?;
                if count > ZIPF_KEYS_MAX {
                    return Err(format!("{text:?}: at most {ZIPF_KEYS_MAX} keys"));
                }
                let exponent = parts
                    .next()
                    .unwrap_or("1.0")
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("{text:?}: the exponent must be a positive number"))?;
                KeyDistribution::Zipf { count, exponent, cumulative: std::sync::Arc::new(zipf_table(count, exponent)) }
            }
            _ => return Err(format!("unknown key distribution {text:?}: use none, seq:N, uniform:N or zipf:N:S")),
        };
        if parts.next().is_some() {
            return Err(format!("{text:?}: too many fields"));
        }
        Ok(distribution)
    }

    /// The key of message `sequence` (a decimal number, as text keys are common), or
    /// `None` for null keys.
    pub fn key(&self, sequence: u64, rng: &mut SmallRng, out: &mut Vec<u8>) -> bool {
        let number = match self {
            KeyDistribution::None => return false,
            KeyDistribution::Sequential { count } => sequence % count,
            KeyDistribution::Uniform { count } => rng.gen_range(0..*count),
            KeyDistribution::Zipf { cumulative, .. } => {
                let draw: f64 = rng.gen();
                cumulative.partition_point(|p| *p < draw).min(cumulative.len() - 1) as u64
            }
        };
        out.clear();
        // Written in place: no allocation per message.
        let _ = write!(out, "key-{number}");
        true
    }
}

/// Cumulative probabilities of a Zipf law: P(k) ∝ 1 / (k+1)^exponent.
fn zipf_table(count: u64, exponent: f64) -> Vec<f64> {
    let mut cumulative = Vec::with_capacity(count as usize);
    let mut total = 0.0;
    for k in 0..count {
        total += 1.0 / ((k + 1) as f64).powf(exponent);
        cumulative.push(total);
    }
    for p in &mut cumulative {
        *p /= total;
    }
    cumulative
}

/// Writes a value of `size` bytes: the stamp, then filler that compresses about as well
/// as text does (a repeating but not constant pattern).
pub fn fill_value(out: &mut Vec<u8>, size: usize, intended_unix_ns: u64, sequence: u64) {
    debug_assert!(size >= VALUE_STAMP_BYTES);
    out.clear();
    out.extend_from_slice(&intended_unix_ns.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend((VALUE_STAMP_BYTES..size).map(|i| b"sluice-bench-payload-0123456789 "[(i + sequence as usize) % 32]));
}

/// The send stamp of a value written by [`fill_value`]: (intended send time, sequence).
pub fn read_stamp(value: &[u8]) -> Option<(u64, u64)> {
    let stamp = value.get(..VALUE_STAMP_BYTES)?;
    let time = u64::from_be_bytes(stamp[..8].try_into().expect("8 bytes"));
    let sequence = u64::from_be_bytes(stamp[8..].try_into().expect("8 bytes"));
    Some((time, sequence))
}

/// Nanoseconds since the Unix epoch of an `Instant`, through one anchor per process, so
/// that stamps and arrival times in one process agree even if the wall clock is stepped
/// during the run.
pub fn unix_nanos(at: Instant) -> u64 {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let (anchor, anchor_ns) = *ANCHOR.get_or_init(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
        (Instant::now(), now.as_nanos() as u64)
    });
    if at >= anchor {
        anchor_ns + at.duration_since(anchor).as_nanos() as u64
    } else {
        anchor_ns - anchor.duration_since(at).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn sizes_parse_and_stay_in_bounds() {
        assert_eq!(SizeDistribution::parse("1024"), Ok(SizeDistribution::Fixed { bytes: 1024 }));
        let uniform = SizeDistribution::parse("uniform:100-200").unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let sizes: Vec<usize> = (0..1000).map(|_| uniform.sample(&mut rng)).collect();
        assert!(sizes.iter().all(|s| (100..=200).contains(s)));
        assert!(sizes.contains(&100) || sizes.contains(&200) || sizes.iter().any(|s| *s < 110));
        assert!(SizeDistribution::parse("8").is_err(), "too small for the stamp");
        assert!(SizeDistribution::parse("uniform:300-200").is_err());
        assert!(SizeDistribution::parse("normal:5").is_err());
    }

    #[test]
    fn keys_follow_their_distribution() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut key = Vec::new();
        assert!(!KeyDistribution::parse("none").unwrap().key(0, &mut rng, &mut key));
        let seq = KeyDistribution::parse("seq:3").unwrap();
        let keys: Vec<String> = (0..4)
            .map(|i| {
                seq.key(i, &mut rng, &mut key);
                String::from_utf8(key.clone()).unwrap()
            })
            .collect();
        assert_eq!(keys, ["key-0", "key-1", "key-2", "key-0"]);
        // Zipf(1.0) over 100 keys: key 0 has probability 1/H(100) ≈ 19%.
        let zipf = KeyDistribution::parse("zipf:100:1.0").unwrap();
        let hot = (0..20_000)
            .filter(|i| {
                zipf.key(*i, &mut rng, &mut key);
                key == b"key-0"
            })
            .count();
        assert!((3_400..4_400).contains(&hot), "key-0 drawn {hot} times of 20000");
        assert!(KeyDistribution::parse("zipf:0").is_err());
        assert!(KeyDistribution::parse("uniform:10:3").is_err());
    }

    #[test]
    fn values_carry_their_stamp() {
        let mut value = Vec::new();
        fill_value(&mut value, 100, 123_456_789, 42);
        assert_eq!(value.len(), 100);
        assert_eq!(read_stamp(&value), Some((123_456_789, 42)));
        assert_eq!(read_stamp(&value[..10]), None);
        let now = Instant::now();
        let later = now + std::time::Duration::from_millis(5);
        assert_eq!(unix_nanos(later) - unix_nanos(now), 5_000_000);
    }
}

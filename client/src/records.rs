//! Records out of a Fetch response's record data: the batches are split and checked
//! (CRC-32C), compressed ones are inflated (the engine's `plain_batch`, shared with
//! compaction), and every batch is read with the engine's record parser, which keeps duplicate header keys (Kafka
//! allows them; `kafka-protocol`'s decoder folds them into a map).

use bytes::Bytes;
use sluice_engine::batch::{peek_batch_size, BatchHeader, Compression, Record, TimestampType, BATCH_HEADER_BYTES};
use sluice_engine::compaction::plain_batch;

/// One record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp (milliseconds since the epoch).
    pub timestamp_ms: i64,
    /// Whose clock `timestamp_ms` is.
    pub timestamp_type: TimestampType,
    /// Key; `None` for a null key.
    pub key: Option<Bytes>,
    /// Value; `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers in the order sent, duplicates kept.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

/// The records of one partition's fetched data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecodedRecords {
    /// The records, in offset order.
    pub records: Vec<FetchedRecord>,
    /// The offset after the last whole batch, where the next fetch starts; `None` when no
    /// whole batch came. Can be past the last record (control batches, compacted gaps).
    pub next_offset: Option<i64>,
}

/// Walks the records of one partition's fetched data: batches are split and checked
/// (CRC-32C), compressed ones inflated, and `visit(offset, batch_header, plain_batch,
/// record)` is called for each record at or after `from_offset` (a batch can start before
/// the offset asked for); `plain_batch` holds the record's bytes, for zero-copy slices.
/// Control batches (transaction markers) are skipped. A batch cut short at the end
/// (brokers may end a response mid-batch) is left out. Returns the offset after the last
/// whole batch, where the next fetch starts (`None` when no whole batch came; it can be
/// past the last record: control batches, compacted gaps).
pub fn for_each_fetched_record(
    mut data: Bytes,
    from_offset: i64,
    mut visit: impl FnMut(i64, &BatchHeader<'_>, &Bytes, Record<'_>),
) -> Result<Option<i64>, String> {
    let mut next_offset = None;
    while data.len() >= BATCH_HEADER_BYTES {
        let size = peek_batch_size(&data, usize::MAX).map_err(|e| e.to_string())?;
        if size > data.len() {
            break;
        }
        let batch = data.split_to(size);
        let header = BatchHeader::parse_verified(&batch, usize::MAX).map_err(|e| e.to_string())?;
        next_offset = Some(header.last_offset() + 1);
        if header.is_control() {
            continue;
        }
        let plain = match header.compression() {
            Compression::None => batch.clone(),
            _ => plain_batch(&header).map_err(|e| format!("batch at offset {}: {e}", header.base_offset()))?,
        };
        let plain_header = BatchHeader::parse(&plain, usize::MAX).map_err(|e| e.to_string())?;
        let base_offset = header.base_offset();
        for record in plain_header.records().expect("an uncompressed batch has readable records") {
            let record = record.map_err(|e| format!("batch at offset {base_offset}: {e}"))?;
            let offset = base_offset + i64::from(record.offset_delta);
            if offset >= from_offset {
                visit(offset, &header, &plain, record);
            }
        }
    }
    Ok(next_offset)
}

/// Decodes the record data of one partition of a Fetch response into records (see
/// [`for_each_fetched_record`] for what is checked and skipped).
pub fn decode_fetched(data: Bytes, from_offset: i64) -> Result<DecodedRecords, String> {
    let mut records = Vec::new();
    let next_offset = for_each_fetched_record(data, from_offset, |offset, header, plain, record| {
        let slice = |part: &[u8]| plain.slice_ref(part);
        let log_append_time = header.timestamp_type() == TimestampType::LogAppendTime;
        records.push(FetchedRecord {
            offset,
            timestamp_ms: if log_append_time {
                header.max_timestamp()
            } else {
                header.base_timestamp() + record.timestamp_delta
            },
            timestamp_type: header.timestamp_type(),
            key: record.key.map(slice),
            value: record.value.map(slice),
            headers: record.headers.iter().map(|(k, v)| (slice(k), v.map(slice))).collect(),
        });
    })?;
    Ok(DecodedRecords { records, next_offset })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression as Codec, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType as Ts,
    };
    use sluice_engine::batch::assign_offsets;
    use sluice_engine::batch_builder::BatchBuilder;

    fn encoded(codec: Codec, base_offset: i64, count: i64) -> Bytes {
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: Ts::Creation,
                offset: base_offset + i,
                sequence: -1,
                timestamp: 1_700_000_000_000 + i,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value {i}").repeat(20))),
                headers: [(kafka_protocol::protocol::StrBytes::from_static_str("h"), Some(Bytes::from("x")))]
                    .into_iter()
                    .collect(),
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(&mut out, &records, &RecordEncodeOptions { version: 2, compression: codec })
            .unwrap();
        out.freeze()
    }

    #[test]
    fn every_codec_decodes_to_the_same_records() {
        let decoded = decode_fetched(encoded(Codec::None, 100, 50), 0).unwrap();
        assert_eq!(decoded.next_offset, Some(150));
        let plain = decoded.records;
        assert_eq!(plain.len(), 50);
        assert_eq!(plain[7].offset, 107);
        assert_eq!(plain[7].key.as_deref(), Some(&b"k7"[..]));
        assert_eq!(plain[7].timestamp_ms, 1_700_000_000_007);
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            assert_eq!(decode_fetched(encoded(codec, 100, 50), 0).unwrap().records, plain, "{codec:?}");
        }
    }

    #[test]
    fn records_before_the_fetch_offset_and_a_cut_off_tail_are_left_out() {
        let mut data = BytesMut::new();
        data.extend_from_slice(&encoded(Codec::Lz4, 0, 10));
        // kafka-protocol writes an uncompressed batch per record: offsets 10..=19 are ten
        // batches, of which the last is cut short.
        let second = encoded(Codec::None, 10, 10);
        data.extend_from_slice(&second[..second.len() - 5]);
        let decoded = decode_fetched(data.freeze(), 4).unwrap();
        assert_eq!(decoded.next_offset, Some(19), "the cut-off batch is fetched again");
        assert_eq!(decoded.records.iter().map(|r| r.offset).collect::<Vec<_>>(), (4..19).collect::<Vec<_>>());
    }

    #[test]
    fn duplicate_header_keys_are_kept_and_corruption_is_reported() {
        let mut builder = BatchBuilder::new(5);
        builder.push(Some(b"k"), None, &[(b"a", Some(b"1")), (b"a", Some(b"2"))], 5);
        let mut batch = BytesMut::from(&builder.build()[..]);
        assign_offsets(&mut batch, 3, 0, None);
        let records = decode_fetched(batch.clone().freeze(), 0).unwrap().records;
        assert_eq!(records[0].offset, 3);
        assert_eq!(records[0].value, None);
        let headers: Vec<_> = records[0].headers.iter().map(|(k, v)| (&k[..], v.as_deref())).collect();
        assert_eq!(headers, vec![(&b"a"[..], Some(&b"1"[..])), (&b"a"[..], Some(&b"2"[..]))]);
        let last = batch.len() - 1;
        batch[last] ^= 0xff;
        assert!(decode_fetched(batch.freeze(), 0).unwrap_err().contains("CRC"));
    }
}

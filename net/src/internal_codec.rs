//! The binary layout helpers of Kafka's internal topics (`__consumer_offsets`,
//! `__transaction_state`): big-endian integers, strings as an i16 length then UTF-8 (-1 for
//! null), bytes as an i32 length then the bytes.

use bytes::{BufMut, Bytes, BytesMut};

/// Writes a non-null string.
pub(crate) fn put_string(out: &mut BytesMut, text: &str) {
    put_nullable_string(out, Some(text));
}

/// Writes a string, or -1 for null.
pub(crate) fn put_nullable_string(out: &mut BytesMut, text: Option<&str>) {
    match text {
        None => out.put_i16(-1),
        Some(text) => {
            out.put_i16(i16::try_from(text.len()).expect("strings in internal records are under 32 KiB"));
            out.put_slice(text.as_bytes());
        }
    }
}

/// Writes bytes with an i32 length.
pub(crate) fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_i32(i32::try_from(bytes.len()).expect("byte fields in internal records are under 2 GiB"));
    out.put_slice(bytes);
}

/// A bounds-checked cursor over a stored key or value.
pub(crate) struct Reader<'a> {
    bytes: &'a Bytes,
    position: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a Bytes) -> Self {
        Reader { bytes, position: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!("field of {n} bytes at position {} runs past the end", self.position));
        }
        let slice = &self.bytes[self.position..self.position + n];
        self.position += n;
        Ok(slice)
    }

    pub(crate) fn i8(&mut self) -> Result<i8, String> {
        Ok(i8::from_be_bytes(self.take(1)?.try_into().expect("1 byte")))
    }
    pub(crate) fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    pub(crate) fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub(crate) fn nullable_string(&mut self) -> Result<Option<String>, String> {
        let length = self.i16()?;
        if length < 0 {
            return Ok(None);
        }
        let at = self.position;
        let text = self.take(length as usize)?;
        String::from_utf8(text.to_vec()).map(Some).map_err(|_| format!("string at position {at} is not UTF-8"))
    }

    pub(crate) fn string(&mut self) -> Result<String, String> {
        let at = self.position;
        self.nullable_string()?.ok_or_else(|| format!("null string at position {at}"))
    }

    pub(crate) fn bytes(&mut self) -> Result<Bytes, String> {
        let length = self.i32()?;
        if length < 0 {
            return Ok(Bytes::new());
        }
        let start = self.position;
        self.take(length as usize)?;
        Ok(self.bytes.slice(start..start + length as usize))
    }

    pub(crate) fn finish(&self) -> Result<(), String> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(format!("{extra} bytes left over at position {}", self.position)),
        }
    }
}

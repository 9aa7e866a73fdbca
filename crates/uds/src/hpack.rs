//! The HPACK a filter needs (RFC 7541): a decoder that follows the client's dynamic table and
//! decodes only what it must, and an encoder that writes literals the server's table never sees.
//!
//! Written here rather than taken from an HPACK crate: the published decoders decode every
//! string and allocate per field, and the most used ones build their Huffman table again for
//! each string, which cost more than the whole check. Huffman strings are decoded with
//! `httlib-huffman`, only when the table or the authority check needs them, or when a block is
//! encoded again.

use std::{collections::VecDeque, ops::Range};

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The name whose values the filter checks.
pub(crate) const AUTHORITY: &[u8] = b":authority";

/// What HTTP/2 adds to a field's name and value lengths when it counts table and list sizes.
pub(crate) const FIELD_OVERHEAD: usize = 32;

/// The largest header list decoded, well above the 16 KiB lists the servers here accept, so
/// that a list h2 would take is never refused here.
pub const MAX_HEADER_LIST: usize = 64 << 10;

/// A header block that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// An integer that runs past the block or past 32 bits.
    #[error("bad integer")]
    Integer,
    /// A string longer than what is left of the block.
    #[error("string past the end of the block")]
    StringLength,
    /// A Huffman string that does not decode.
    #[error("bad Huffman string")]
    Huffman,
    /// An index in neither table (or 0).
    #[error("index {0} in no table")]
    Index(usize),
    /// A dynamic table size above the server's setting.
    #[error("dynamic table size {0} above the limit")]
    TableSize(usize),
    /// A header list larger than [`MAX_HEADER_LIST`].
    #[error("header list over {MAX_HEADER_LIST} bytes")]
    ListTooLarge,
}

/// One part of a decoded field: bytes in the decoder's buffer, or a Huffman string in the
/// block not decoded yet (nothing needed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Decoded(Range<usize>),
    Huffman(Range<usize>),
}

/// A decoded field of the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub name: Piece,
    pub value: Piece,
    /// Sent "never indexed": an intermediary must keep it so.
    pub never_indexed: bool,
}

/// The fields of the last block decoded, with their bytes.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub list: Vec<Field>,
    pub bytes: Vec<u8>,
    /// Name + value + 32 per field, as HTTP/2 counts a header list (a Huffman string not
    /// decoded counts its encoded length, a lower bound: this only bounds the work).
    pub list_size: usize,
    /// Whether an `:authority` h2 would refuse is among them.
    pub refused_authority: bool,
}

impl Fields {
    /// The bytes of `piece`, decoding a Huffman string of `block` into the buffer if need be.
    pub fn resolve(&mut self, piece: &Piece, block: &[u8]) -> Result<Range<usize>, HpackError> {
        match piece {
            Piece::Decoded(range) => Ok(range.clone()),
            Piece::Huffman(range) => huffman(block.get(range.clone()).unwrap_or_default(), &mut self.bytes),
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Name then value.
    bytes: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        self.bytes.get(..self.name_len).unwrap_or_default()
    }

    fn value(&self) -> &[u8] {
        self.bytes.get(self.name_len..).unwrap_or_default()
    }

    fn size(&self) -> usize {
        self.bytes.len() + FIELD_OVERHEAD
    }
}

/// Follows a peer's encoder: its dynamic table, within `max_allowed` bytes.
#[derive(Debug)]
pub(crate) struct Decoder {
    table: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    max_allowed: usize,
}

/// Decodes an HPACK integer with an `n`-bit prefix from `buf` at `*at`.
fn integer(buf: &[u8], at: &mut usize, n: u32) -> Result<usize, HpackError> {
    let mask = (1u8 << n) - 1;
    let first = *buf.get(*at).ok_or(HpackError::Integer)? & mask;
    *at += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut value = usize::from(mask);
    for shift in (0..=28).step_by(7) {
        let byte = *buf.get(*at).ok_or(HpackError::Integer)?;
        *at += 1;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(value).map(|_| value).map_err(|_| HpackError::Integer);
        }
    }
    Err(HpackError::Integer)
}

/// Appends the Huffman decoding of `src` to `dst`; the range it took.
fn huffman(src: &[u8], dst: &mut Vec<u8>) -> Result<Range<usize>, HpackError> {
    let start = dst.len();
    httlib_huffman::decode(src, dst, httlib_huffman::DecoderSpeed::FiveBits).map_err(|_| HpackError::Huffman)?;
    Ok(start..dst.len())
}

/// A string literal at `*at`: its bytes in `buf`, and whether they are Huffman-coded.
fn string(buf: &[u8], at: &mut usize) -> Result<(Range<usize>, bool), HpackError> {
    let huffman = buf.get(*at).is_some_and(|b| b & 0x80 != 0);
    let len = integer(buf, at, 7)?;
    let end = at.checked_add(len).filter(|end| *end <= buf.len()).ok_or(HpackError::StringLength)?;
    let range = *at..end;
    *at = end;
    Ok((range, huffman))
}

impl Decoder {
    /// A decoder whose table may hold at most `max_allowed` bytes (the server's
    /// SETTINGS_HEADER_TABLE_SIZE), which is also its initial size.
    pub fn new(max_allowed: usize) -> Self {
        Decoder { table: VecDeque::new(), size: 0, max_size: max_allowed, max_allowed }
    }

    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        if let Some((name, value)) = index.checked_sub(1).and_then(|i| STATIC_TABLE.get(i)) {
            return Ok((name, value));
        }
        let entry = index.checked_sub(STATIC_TABLE.len() + 1).and_then(|i| self.table.get(i));
        entry.map(|e| (e.name(), e.value())).ok_or(HpackError::Index(index))
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            let Some(entry) = self.table.pop_back() else { break };
            self.size -= entry.size();
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + FIELD_OVERHEAD;
        if size > self.max_size {
            // An entry larger than the table empties it and is not added (RFC 7541 4.4).
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - size);
        self.table.push_front(Entry { bytes: [name, value].concat().into_boxed_slice(), name_len: name.len() });
        self.size += size;
    }

    /// Decodes the header block `block` into `fields` (cleared first), following the table.
    /// Strings are decoded only when the table or the `:authority` check needs them.
    pub fn decode(&mut self, block: &[u8], fields: &mut Fields) -> Result<(), HpackError> {
        fields.list.clear();
        fields.bytes.clear();
        fields.list_size = 0;
        fields.refused_authority = false;
        let mut at = 0;
        while let Some(&first) = block.get(at) {
            if first & 0x80 != 0 {
                let (name, value) = self.get(integer(block, &mut at, 7)?)?;
                let name = copy(name, &mut fields.bytes);
                let value = copy(value, &mut fields.bytes);
                self.push(fields, Piece::Decoded(name), Piece::Decoded(value), false)?;
                continue;
            }
            if first & 0xe0 == 0x20 {
                let size = integer(block, &mut at, 5)?;
                if size > self.max_allowed {
                    return Err(HpackError::TableSize(size));
                }
                self.max_size = size;
                self.evict_to(size);
                continue;
            }
            let (indexing, prefix) = if first & 0x40 != 0 { (true, 6) } else { (false, 4) };
            let never_indexed = !indexing && first & 0x10 != 0;
            let name_index = integer(block, &mut at, prefix)?;
            let name = if name_index == 0 {
                let (range, coded) = string(block, &mut at)?;
                // Names are short: decoded to tell `:authority` from the rest.
                if coded {
                    huffman(block.get(range).unwrap_or_default(), &mut fields.bytes)?
                } else {
                    copy_range(block, range, &mut fields.bytes)
                }
            } else {
                let (name, _) = self.get(name_index)?;
                copy(name, &mut fields.bytes)
            };
            let (range, coded) = string(block, &mut at)?;
            let is_authority = fields.bytes.get(name.clone()) == Some(AUTHORITY);
            let value = if !coded {
                Piece::Decoded(copy_range(block, range, &mut fields.bytes))
            } else if indexing || is_authority {
                Piece::Decoded(huffman(block.get(range).unwrap_or_default(), &mut fields.bytes)?)
            } else {
                Piece::Huffman(range)
            };
            if let (true, Piece::Decoded(value)) = (indexing, &value) {
                let (name, value) = (fields.bytes.get(name.clone()), fields.bytes.get(value.clone()));
                self.insert(name.unwrap_or_default(), value.unwrap_or_default());
            }
            self.push(fields, Piece::Decoded(name), value, never_indexed)?;
        }
        Ok(())
    }

    /// Adds a field; a list past `MAX_HEADER_LIST` ends the decoding (a block of small
    /// references to large entries would otherwise copy without bound).
    fn push(&self, fields: &mut Fields, name: Piece, value: Piece, never_indexed: bool) -> Result<(), HpackError> {
        let len = |p: &Piece| match p {
            Piece::Decoded(r) | Piece::Huffman(r) => r.len(),
        };
        fields.list_size += len(&name) + len(&value) + FIELD_OVERHEAD;
        if fields.list_size > MAX_HEADER_LIST {
            return Err(HpackError::ListTooLarge);
        }
        if let (Piece::Decoded(n), Piece::Decoded(v)) = (&name, &value)
            && fields.bytes.get(n.clone()) == Some(AUTHORITY)
            && !crate::is_valid_authority(fields.bytes.get(v.clone()).unwrap_or_default())
        {
            fields.refused_authority = true;
        }
        fields.list.push(Field { name, value, never_indexed });
        Ok(())
    }
}

fn copy(src: &[u8], dst: &mut Vec<u8>) -> Range<usize> {
    let start = dst.len();
    dst.extend_from_slice(src);
    start..dst.len()
}

fn copy_range(block: &[u8], range: Range<usize>, dst: &mut Vec<u8>) -> Range<usize> {
    copy(block.get(range).unwrap_or_default(), dst)
}

/// Appends an HPACK integer with an `n`-bit prefix, the prefix's other bits `flags`.
pub(crate) fn put_integer(mut value: usize, n: u32, flags: u8, dst: &mut Vec<u8>) {
    let mask = (1usize << n) - 1;
    if value < mask {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | mask as u8);
    value -= mask;
    while value >= 0x80 {
        dst.push(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    dst.push(value as u8);
}

/// Appends a field as a literal with a literal name that no table keeps ("without indexing",
/// or "never indexed" as it came), so the server's dynamic table is never touched.
pub(crate) fn put_literal(name: &[u8], value: &[u8], never_indexed: bool, dst: &mut Vec<u8>) {
    dst.push(if never_indexed { 0x10 } else { 0x00 });
    for s in [name, value] {
        put_integer(s.len(), 7, 0, dst);
        dst.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests;

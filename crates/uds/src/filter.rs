//! The client-to-server half of an HTTP/2 connection, rewritten so that h2 accepts it: a
//! request whose `:authority` is not a URI authority (grpc-go over a Unix socket sends the
//! socket path, `/var/run/…`) loses that header instead of being reset with PROTOCOL_ERROR.
//! Everything else passes byte for byte. No I/O: [`AuthorityFilter::process`] takes what was
//! read and gives what the server should read.
//!
//! HPACK is stateful, so every header block is decoded to follow the client's dynamic table.
//! Blocks are forwarded as they came until one needs a change; from then on every block of the
//! connection is written again as literals that no table keeps, so the server's table (which
//! still holds what the forwarded blocks put there) is never referred to again. Connections
//! that never need a change (Envoy's) cost a light decode per block and a copy.

use bytes::{BufMut, BytesMut};

use crate::{
    frame::{FRAME_HEADER_LEN, FrameHeader, PREFACE, flag, kind},
    hpack::{AUTHORITY, Decoder, Fields, HpackError, put_literal},
};

/// The priority fields of a HEADERS frame with the PRIORITY flag: dependency and weight.
const PRIORITY_LEN: usize = 5;
/// HTTP/2's initial SETTINGS_HEADER_TABLE_SIZE. The servers behind this filter never announce
/// another, so it bounds the client's dynamic table.
const HEADER_TABLE_SIZE: usize = 4096;
/// The smallest SETTINGS_MAX_FRAME_SIZE a server may have: re-encoded blocks are cut to it.
const MIN_MAX_FRAME_SIZE: usize = 16_384;
/// The largest header block held while its frames arrive (compressed, frame headers included):
/// well above the 16 KiB header lists the servers here accept, so a block h2 would take is
/// never refused here.
pub const MAX_HEADER_BLOCK: usize = 64 << 10;

/// Why a connection cannot be followed any further; the caller ends it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// A header block larger than [`MAX_HEADER_BLOCK`], compressed or decoded.
    #[error("HTTP/2 header block over {MAX_HEADER_BLOCK} bytes")]
    BlockTooLarge,
    /// A frame other than the CONTINUATION of the same stream in the middle of a header block.
    #[error("HTTP/2 frame of type {frame_type} on stream {stream_id} inside a header block")]
    BrokenBlock {
        /// The type of the frame that arrived.
        frame_type: u8,
        /// The stream whose header block it interrupted.
        stream_id: u32,
    },
    /// HEADERS padding longer than the frame, or PRIORITY fields cut short.
    #[error("malformed HTTP/2 HEADERS frame on stream {stream_id}")]
    MalformedHeaders {
        /// The HEADERS frame's stream.
        stream_id: u32,
    },
    /// A block that does not decode, once blocks are being encoded again (before that, the
    /// block goes to the server as it came, which answers with COMPRESSION_ERROR).
    #[error("HTTP/2 header block on stream {stream_id} does not decode: {error}")]
    Hpack {
        /// The stream the block belongs to.
        stream_id: u32,
        /// Why it does not decode.
        error: HpackError,
    },
}

/// Where the filter is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside the connection preface, `seen` bytes of it read.
    Preface { seen: usize },
    /// At a frame boundary.
    FrameHeader,
    /// Inside a frame that passes as it is, `remaining` bytes of it still to come.
    Forward { remaining: usize },
    /// Not the HTTP/2 this filter follows (a bad preface, a block it could not decode while
    /// forwarding): everything passes untouched and the server judges it.
    Opaque,
}

/// The header block being collected: its frames as they came, and the fragments joined.
#[derive(Debug, Default)]
struct Block {
    stream_id: u32,
    /// END_STREAM and PRIORITY of the HEADERS frame (the flags a re-encoded block keeps).
    flags: u8,
    priority: Option<[u8; PRIORITY_LEN]>,
    raw: BytesMut,
    fragment: BytesMut,
    /// Whether a block is being collected (the buffers are kept between blocks).
    open: bool,
}

/// Follows one connection's client-to-server bytes; see the module doc.
pub struct AuthorityFilter {
    state: State,
    decoder: Decoder,
    /// Set once a block has been changed: every later block is written again.
    re_encoding: bool,
    block: Block,
    fields: Fields,
    encoded: Vec<u8>,
}

impl std::fmt::Debug for AuthorityFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorityFilter")
            .field("state", &self.state)
            .field("re_encoding", &self.re_encoding)
            .finish_non_exhaustive()
    }
}

impl Default for AuthorityFilter {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether h2 takes `value` as a request's `:authority` (the same parse h2 applies).
pub fn is_valid_authority(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

impl AuthorityFilter {
    /// A filter for a new connection (expects the client preface).
    pub fn new() -> Self {
        AuthorityFilter {
            state: State::Preface { seen: 0 },
            decoder: Decoder::new(HEADER_TABLE_SIZE),
            re_encoding: false,
            block: Block::default(),
            fields: Fields::default(),
            encoded: Vec::new(),
        }
    }

    /// A filter that passes everything as it is (for listeners that stay strict).
    pub fn passthrough() -> Self {
        AuthorityFilter { state: State::Opaque, ..Self::new() }
    }

    /// Whether a block has been changed on this connection (every later one is encoded again).
    pub fn is_re_encoding(&self) -> bool {
        self.re_encoding
    }

    /// Whether everything from here on passes untouched.
    pub fn is_opaque(&self) -> bool {
        self.state == State::Opaque
    }

    /// Moves what can be decided from `input` to `output`: whole frames, the parts of frames
    /// that pass as they are, and complete header blocks (rewritten if need be). Bytes of an
    /// unfinished frame header or header block stay in `input` for the next call.
    pub fn process(&mut self, input: &mut BytesMut, output: &mut BytesMut) -> Result<(), FilterError> {
        loop {
            match self.state {
                State::Opaque => {
                    output.extend_from_slice(input);
                    input.clear();
                    return Ok(());
                }
                State::Preface { seen } => {
                    let expected = PREFACE.get(seen..).unwrap_or_default();
                    let n = expected.len().min(input.len());
                    if input.get(..n) != expected.get(..n) {
                        self.state = State::Opaque;
                        continue;
                    }
                    output.extend_from_slice(&input.split_to(n));
                    if seen + n < PREFACE.len() {
                        self.state = State::Preface { seen: seen + n };
                        return Ok(());
                    }
                    self.state = State::FrameHeader;
                }
                State::Forward { remaining } => {
                    let n = remaining.min(input.len());
                    output.extend_from_slice(&input.split_to(n));
                    if n < remaining {
                        self.state = State::Forward { remaining: remaining - n };
                        return Ok(());
                    }
                    self.state = State::FrameHeader;
                }
                State::FrameHeader => {
                    let Some(header) = input.first_chunk::<FRAME_HEADER_LEN>() else { return Ok(()) };
                    let FrameHeader { length, frame_type, flags, stream_id } = FrameHeader::parse(header);
                    let in_block = self.block.open;
                    if in_block && (frame_type != kind::CONTINUATION || stream_id != self.block.stream_id) {
                        return Err(FilterError::BrokenBlock { frame_type, stream_id });
                    }
                    if !in_block && frame_type != kind::HEADERS {
                        // Everything but a header block passes; h2 judges a stray CONTINUATION.
                        output.extend_from_slice(&input.split_to(FRAME_HEADER_LEN));
                        self.state = State::Forward { remaining: length };
                        continue;
                    }
                    if self.block.raw.len() + FRAME_HEADER_LEN + length > MAX_HEADER_BLOCK {
                        return Err(FilterError::BlockTooLarge);
                    }
                    if input.len() < FRAME_HEADER_LEN + length {
                        // Room for the rest of the frame, so that the reader reads it in one go.
                        input.reserve(FRAME_HEADER_LEN + length - input.len());
                        return Ok(());
                    }
                    let frame = input.split_to(FRAME_HEADER_LEN + length);
                    self.add_frame(&frame, frame_type, flags, stream_id)?;
                    if flags & flag::END_HEADERS != 0 {
                        self.finish_block(output)?;
                    }
                }
            }
        }
    }

    /// Adds one HEADERS or CONTINUATION frame (whole, header included) to the open block.
    fn add_frame(&mut self, frame: &[u8], frame_type: u8, flags: u8, stream_id: u32) -> Result<(), FilterError> {
        let block = &mut self.block;
        block.raw.extend_from_slice(frame);
        let mut payload = frame.get(FRAME_HEADER_LEN..).unwrap_or_default();
        if frame_type == kind::HEADERS {
            let malformed = FilterError::MalformedHeaders { stream_id };
            if flags & flag::PADDED != 0 {
                let (&pad, rest) = payload.split_first().ok_or_else(|| malformed.clone())?;
                let keep = rest.len().checked_sub(usize::from(pad)).ok_or_else(|| malformed.clone())?;
                payload = rest.get(..keep).unwrap_or_default();
            }
            block.priority = if flags & flag::PRIORITY != 0 {
                let (priority, rest) = payload.split_first_chunk::<PRIORITY_LEN>().ok_or(malformed)?;
                payload = rest;
                Some(*priority)
            } else {
                None
            };
            block.stream_id = stream_id;
            block.flags = flags & (flag::END_STREAM | flag::PRIORITY);
            block.open = true;
        }
        block.fragment.extend_from_slice(payload);
        Ok(())
    }

    /// The block is complete: forward it as it came, or write it again without the
    /// `:authority` h2 would refuse.
    fn finish_block(&mut self, output: &mut BytesMut) -> Result<(), FilterError> {
        self.block.open = false;
        let decoded = self.decoder.decode(&self.block.fragment, &mut self.fields);
        match decoded {
            Err(error) if self.re_encoding => {
                return Err(FilterError::Hpack { stream_id: self.block.stream_id, error });
            }
            Err(_) => {
                // Still in step with the server: let it see the block and answer the client.
                output.extend_from_slice(&self.block.raw);
                self.state = State::Opaque;
            }
            Ok(()) if !self.fields.refused_authority && !self.re_encoding => {
                output.extend_from_slice(&self.block.raw);
            }
            Ok(()) => {
                self.re_encoding = true;
                self.encode_block(output)
                    .map_err(|error| FilterError::Hpack { stream_id: self.block.stream_id, error })?;
            }
        }
        self.block.raw.clear();
        self.block.fragment.clear();
        Ok(())
    }

    /// Writes the decoded fields, less any `:authority` h2 would refuse, as new frames.
    fn encode_block(&mut self, output: &mut BytesMut) -> Result<(), HpackError> {
        let encoded = &mut self.encoded;
        encoded.clear();
        for i in 0..self.fields.list.len() {
            let Some(field) = self.fields.list.get(i).cloned() else { break };
            let name = self.fields.resolve(&field.name, &self.block.fragment)?;
            let value = self.fields.resolve(&field.value, &self.block.fragment)?;
            let (name, value) = (self.fields.bytes.get(name), self.fields.bytes.get(value));
            let (name, value) = (name.unwrap_or_default(), value.unwrap_or_default());
            if name == AUTHORITY && !is_valid_authority(value) {
                continue;
            }
            put_literal(name, value, field.never_indexed, encoded);
        }
        let priority = self.block.priority.as_ref().map_or(&[][..], |p| &p[..]);
        let first_room = MIN_MAX_FRAME_SIZE - priority.len();
        let (first, rest) = encoded.split_at(first_room.min(encoded.len()));
        let mut chunks = rest.chunks(MIN_MAX_FRAME_SIZE).peekable();
        let end_headers = |last: bool| if last { flag::END_HEADERS } else { 0 };
        let stream_id = self.block.stream_id;
        let flags = self.block.flags | end_headers(chunks.peek().is_none());
        FrameHeader { length: priority.len() + first.len(), frame_type: kind::HEADERS, flags, stream_id }.put(output);
        output.put_slice(priority);
        output.put_slice(first);
        while let Some(chunk) = chunks.next() {
            let flags = end_headers(chunks.peek().is_none());
            FrameHeader { length: chunk.len(), frame_type: kind::CONTINUATION, flags, stream_id }.put(output);
            output.put_slice(chunk);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

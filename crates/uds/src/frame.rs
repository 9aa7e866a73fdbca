//! HTTP/2 framing (RFC 9113 §3.4, §4.1, §6): the client preface, and the 9-byte header before
//! every frame's payload, with the frame types and flags the filter and the tests' frame-level
//! client use.

use bytes::BufMut;

/// What every HTTP/2 client sends first.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The length of a frame header: 24-bit length, type, flags, 31-bit stream id.
pub const FRAME_HEADER_LEN: usize = 9;

/// Frame types.
pub mod kind {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION.
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    /// DATA, HEADERS: the last frame the sender sends on the stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, CONTINUATION: the header block ends with this frame.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS: a pad length byte leads and padding trails the payload.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: dependency and weight lead the header block.
    pub const PRIORITY: u8 = 0x20;
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The payload's length (24 bits on the wire).
    pub length: usize,
    /// The frame type ([`kind`]).
    pub frame_type: u8,
    /// Its flags ([`flag`]).
    pub flags: u8,
    /// The stream (0 for the connection), the reserved bit dropped.
    pub stream_id: u32,
}

impl FrameHeader {
    /// Reads a header.
    pub fn parse(bytes: &[u8; FRAME_HEADER_LEN]) -> Self {
        let [l0, l1, l2, frame_type, flags, s0, s1, s2, s3] = *bytes;
        FrameHeader {
            length: usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2),
            frame_type,
            flags,
            stream_id: u32::from_be_bytes([s0, s1, s2, s3]) & 0x7fff_ffff,
        }
    }

    /// Appends the header; `length` must fit in 24 bits (every caller here stays under the
    /// minimum SETTINGS_MAX_FRAME_SIZE, 16,384).
    pub fn put(&self, out: &mut impl BufMut) {
        out.put_uint(self.length as u64, 3);
        out.put_u8(self.frame_type);
        out.put_u8(self.flags);
        out.put_u32(self.stream_id & 0x7fff_ffff);
    }
}

/// A whole frame, header and payload (for the tests' frame-level clients).
pub fn encode(frame_type: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    FrameHeader { length: payload.len(), frame_type, flags, stream_id }.put(&mut out);
    out.extend_from_slice(payload);
    out
}

use loona_hpack::{Decoder, Encoder};
use proptest::prelude::*;

use super::*;
use crate::frame::encode as frame;

type Field = (Vec<u8>, Vec<u8>);

/// The preface and an empty SETTINGS frame: how every client starts.
fn opening() -> Vec<u8> {
    [PREFACE, &frame(kind::SETTINGS, 0, 0, &[])].concat()
}

fn request(authority: Option<&[u8]>, extra: &[(&str, &str)]) -> Vec<Field> {
    let mut fields: Vec<Field> = vec![
        (b":method".to_vec(), b"POST".to_vec()),
        (b":scheme".to_vec(), b"http".to_vec()),
        (b":path".to_vec(), b"/felix.PolicySync/Sync".to_vec()),
    ];
    if let Some(authority) = authority {
        fields.push((b":authority".to_vec(), authority.to_vec()));
    }
    fields.push((b"content-type".to_vec(), b"application/grpc".to_vec()));
    fields.push((b"te".to_vec(), b"trailers".to_vec()));
    fields.extend(extra.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())));
    fields
}

fn encode(encoder: &mut Encoder<'static>, fields: &[Field]) -> Vec<u8> {
    encoder.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])))
}

/// What h2 would see: header blocks decoded with a fresh decoder, other frames as they are.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Headers { stream_id: u32, end_stream: bool, priority: Option<[u8; 5]>, fields: Vec<Field> },
    Other { frame_type: u8, flags: u8, stream_id: u32, payload: Vec<u8> },
}

fn server_view(mut bytes: &[u8]) -> Vec<Seen> {
    assert!(bytes.starts_with(PREFACE), "the preface passes first");
    bytes = &bytes[PREFACE.len()..];
    let mut decoder = Decoder::new();
    let mut seen = Vec::new();
    // Stream, flags and priority of the HEADERS frame, and the fragments so far.
    type Open = (u32, u8, Option<[u8; 5]>, Vec<u8>);
    let mut block: Option<Open> = None;
    while !bytes.is_empty() {
        let FrameHeader { length, frame_type, flags, stream_id } = FrameHeader::parse(bytes[..9].try_into().unwrap());
        assert!(length <= MIN_MAX_FRAME_SIZE, "a frame the server accepts");
        let mut payload = &bytes[9..9 + length];
        bytes = &bytes[9 + length..];
        match frame_type {
            kind::HEADERS => {
                assert!(block.is_none());
                if flags & flag::PADDED != 0 {
                    let pad = usize::from(payload[0]);
                    payload = &payload[1..payload.len() - pad];
                }
                let priority = (flags & flag::PRIORITY != 0).then(|| {
                    let p: [u8; 5] = payload[..5].try_into().unwrap();
                    payload = &payload[5..];
                    p
                });
                block = Some((stream_id, flags, priority, payload.to_vec()));
            }
            kind::CONTINUATION => block.as_mut().expect("CONTINUATION inside a block").3.extend_from_slice(payload),
            _ => {
                assert!(block.is_none(), "no frame inside a block");
                seen.push(Seen::Other { frame_type, flags, stream_id, payload: payload.to_vec() });
                continue;
            }
        }
        if flags & flag::END_HEADERS != 0 {
            let (stream_id, first_flags, priority, fragment) = block.take().unwrap();
            let fields = decoder.decode(&fragment).expect("the server decodes every block");
            seen.push(Seen::Headers { stream_id, end_stream: first_flags & flag::END_STREAM != 0, priority, fields });
        }
    }
    assert!(block.is_none(), "no block left open");
    seen
}

fn run(input: &[u8]) -> Result<Vec<u8>, FilterError> {
    let mut filter = AuthorityFilter::new();
    let mut input = BytesMut::from(input);
    let mut output = BytesMut::new();
    filter.process(&mut input, &mut output)?;
    assert!(input.is_empty(), "a whole stream is consumed");
    Ok(output.to_vec())
}

/// What the filter must produce, as the server sees it: the client's blocks less the
/// authorities h2 refuses.
fn expected(requests: &[(u32, Vec<Field>)]) -> Vec<Seen> {
    let mut expected = vec![Seen::Other { frame_type: kind::SETTINGS, flags: 0, stream_id: 0, payload: vec![] }];
    for (stream_id, fields) in requests {
        let fields = fields.iter().filter(|(n, v)| n != b":authority" || is_valid_authority(v)).cloned().collect();
        expected.push(Seen::Headers { stream_id: *stream_id, end_stream: false, priority: None, fields });
        expected.push(Seen::Other {
            frame_type: kind::DATA,
            flags: flag::END_STREAM,
            stream_id: *stream_id,
            payload: b"body".to_vec(),
        });
    }
    expected
}

fn connection(requests: &[(u32, Vec<Field>)]) -> Vec<u8> {
    let mut encoder = Encoder::new();
    let mut bytes = opening();
    for (stream_id, fields) in requests {
        bytes.extend(frame(kind::HEADERS, flag::END_HEADERS, *stream_id, &encode(&mut encoder, fields)));
        bytes.extend(frame(kind::DATA, flag::END_STREAM, *stream_id, b"body"));
    }
    bytes
}

const SOCKET_PATH: &[u8] = b"/var/run/nodeagent/mount/shop.database/socket";

#[test]
fn the_four_forms_grpc_clients_send() {
    assert!(!is_valid_authority(SOCKET_PATH), "grpc-go: the socket path");
    assert!(!is_valid_authority(b""), "empty");
    assert!(!is_valid_authority(b"%2Fvar%2Frun%2Fnodeagent%2Fsocket"), "gRPC C-core: percent-encoded");
    assert!(is_valid_authority(b"localhost"));
}

#[test]
fn accepted_authorities_pass_byte_for_byte() {
    for authority in [Some(&b"localhost"[..]), Some(b"ext-authz"), Some(b"127.0.0.1:9000"), None] {
        let input = connection(&[(1, request(authority, &[])), (3, request(authority, &[("grpc-timeout", "5S")]))]);
        assert_eq!(run(&input).unwrap(), input, "{authority:?}");
    }
}

#[test]
fn refused_authorities_are_dropped_and_the_rest_kept() {
    for authority in [SOCKET_PATH, b"%2Fvar%2Frun%2Fnodeagent%2Fsocket", b""] {
        let requests = [(1, request(Some(authority), &[("user-agent", "grpc-go/1.75.0")]))];
        let output = run(&connection(&requests)).unwrap();
        let seen = server_view(&output);
        assert_eq!(seen, expected(&requests));
        let Seen::Headers { fields, .. } = &seen[1] else { panic!() };
        assert!(!fields.iter().any(|(n, _)| n == b":authority"), "{fields:?}");
        assert!(fields.contains(&(b"user-agent".to_vec(), b"grpc-go/1.75.0".to_vec())));
    }
}

#[test]
fn many_requests_stay_in_step_with_the_servers_table() {
    // Blocks forwarded, then one changed (the server's table is emptied), then encoded again,
    // with the client's dynamic table in use all along.
    let requests: Vec<_> = (0..60u32)
        .map(|i| {
            let authority: &[u8] = if i < 5 {
                b"localhost"
            } else if i % 3 == 0 {
                b""
            } else {
                SOCKET_PATH
            };
            let timeout = format!("{}m", 100 + i % 7);
            let value = format!("value-{}", i % 11);
            (2 * i + 1, request(Some(authority), &[("grpc-timeout", &timeout), ("x-custom", &value)]))
        })
        .collect();
    let output = run(&connection(&requests)).unwrap();
    assert_eq!(server_view(&output), expected(&requests));
}

#[test]
fn padding_priority_and_continuations() {
    let fields = request(Some(SOCKET_PATH), &[("x-long", &"v".repeat(300))]);
    let block = encode(&mut Encoder::new(), &fields);
    let (head, tail) = block.split_at(40);
    let mut headers = vec![3u8]; // pad length
    headers.extend([0x80, 0, 0, 1, 15]); // exclusive dependency on stream 1, weight 16
    headers.extend(head);
    headers.extend([0, 0, 0]);
    let mut input = opening();
    input.extend(frame(kind::HEADERS, flag::PADDED | flag::PRIORITY | flag::END_STREAM, 5, &headers));
    input.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 5, tail));
    let seen = server_view(&run(&input).unwrap());
    let kept: Vec<Field> = fields.into_iter().filter(|(n, _)| n != b":authority").collect();
    assert_eq!(
        seen[1],
        Seen::Headers { stream_id: 5, end_stream: true, priority: Some([0x80, 0, 0, 1, 15]), fields: kept }
    );
}

#[test]
fn a_large_block_is_cut_into_frames_the_server_takes() {
    let fields = request(Some(SOCKET_PATH), &[("x-a", &"a".repeat(15_000)), ("x-b", &"b".repeat(15_000))]);
    let block = encode(&mut Encoder::new(), &fields);
    let mut input = opening();
    let (first, rest) = block.split_at(MIN_MAX_FRAME_SIZE);
    input.extend(frame(kind::HEADERS, 0, 1, first));
    input.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, rest));
    let output = run(&input).unwrap();
    let seen = server_view(&output);
    let Seen::Headers { fields: got, .. } = &seen[1] else { panic!("{seen:?}") };
    assert_eq!(got.len(), fields.len() - 1);
}

#[test]
fn broken_blocks_end_the_connection() {
    let block = encode(&mut Encoder::new(), &request(Some(SOCKET_PATH), &[]));
    let mut input = opening();
    input.extend(frame(kind::HEADERS, 0, 1, &block[..4]));
    input.extend(frame(kind::DATA, 0, 1, b"x"));
    assert_eq!(run(&input), Err(FilterError::BrokenBlock { frame_type: 0, stream_id: 1 }));

    let mut input = opening();
    input.extend(frame(kind::HEADERS, 0, 1, &[0; 40 << 10]));
    input.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[0; 40 << 10]));
    assert_eq!(run(&input), Err(FilterError::BlockTooLarge));

    // Padding longer than the frame.
    let mut input = opening();
    input.extend(frame(kind::HEADERS, flag::PADDED | flag::END_HEADERS, 1, &[9, 1, 2]));
    assert_eq!(run(&input), Err(FilterError::MalformedHeaders { stream_id: 1 }));
}

#[test]
fn an_undecodable_block_goes_to_the_server_while_in_step() {
    // Index 70 is in no table: the server must see it and answer COMPRESSION_ERROR.
    let mut input = opening();
    input.extend(frame(kind::HEADERS, flag::END_HEADERS, 1, &[0x80 | 70]));
    input.extend(frame(kind::DATA, flag::END_STREAM, 1, b"body"));
    assert_eq!(run(&input).unwrap(), input);

    // Once blocks are encoded again, the connection cannot be followed: it ends.
    let mut input = connection(&[(1, request(Some(SOCKET_PATH), &[]))]);
    input.extend(frame(kind::HEADERS, flag::END_HEADERS, 3, &[0x80 | 70]));
    assert!(matches!(run(&input), Err(FilterError::Hpack { stream_id: 3, .. })));
}

#[test]
fn not_http2_passes_untouched() {
    let input = b"GET / HTTP/1.1\r\nHost: /var/run/x\r\n\r\n".to_vec();
    assert_eq!(run(&input).unwrap(), input);
    let mut filter = AuthorityFilter::passthrough();
    let (mut input, mut output) = (BytesMut::from(&connection(&[(1, request(Some(b""), &[]))])[..]), BytesMut::new());
    let copy = input.clone();
    filter.process(&mut input, &mut output).unwrap();
    assert_eq!(output, copy);
}

fn field() -> impl Strategy<Value = Field> {
    ("x-[a-z]{1,8}", proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(n, v)| (n.into_bytes(), v))
}

fn authority() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        Just(Some(SOCKET_PATH.to_vec())),
        Just(Some(Vec::new())),
        Just(Some(b"localhost".to_vec())),
        Just(Some(b"%2Fvar%2Frun%2Fx".to_vec())),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Some),
    ]
}

proptest! {
    /// Whatever the requests and however the bytes arrive, the server sees the client's
    /// header lists less the authorities it would refuse, and every other frame unchanged.
    #[test]
    fn the_server_sees_the_clients_requests(
        requests in proptest::collection::vec((authority(), proptest::collection::vec(field(), 0..6)), 1..12),
        cuts in proptest::collection::vec(1usize..200, 0..40),
    ) {
        let requests: Vec<(u32, Vec<Field>)> = requests.into_iter().enumerate().map(|(i, (authority, extra))| {
            let mut fields = request(authority.as_deref(), &[]);
            fields.extend(extra);
            (2 * i as u32 + 1, fields)
        }).collect();
        let input = connection(&requests);
        let whole = run(&input).unwrap();
        prop_assert_eq!(server_view(&whole), expected(&requests));

        let mut filter = AuthorityFilter::new();
        let (mut pending, mut output) = (BytesMut::new(), BytesMut::new());
        let mut rest = &input[..];
        for cut in cuts.iter().copied().chain(std::iter::repeat(usize::MAX)) {
            let (now, later) = rest.split_at(cut.min(rest.len()));
            pending.extend_from_slice(now);
            rest = later;
            filter.process(&mut pending, &mut output).unwrap();
            if rest.is_empty() { break; }
        }
        prop_assert!(pending.is_empty());
        prop_assert_eq!(output.to_vec(), whole);
    }

    /// Arbitrary bytes never panic, and whatever is emitted is a prefix-consistent stream.
    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut filter = AuthorityFilter::new();
        let (mut input, mut output) = (BytesMut::from(&[PREFACE, &tail[..]].concat()[..]), BytesMut::new());
        let _ = filter.process(&mut input, &mut output);
    }
}

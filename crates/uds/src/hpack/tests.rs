use proptest::prelude::*;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn decoded(decoder: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
    let mut fields = Fields::default();
    decoder.decode(block, &mut fields).unwrap();
    let list = fields.list.clone();
    list.iter()
        .map(|f| {
            let n = fields.resolve(&f.name, block).unwrap();
            let v = fields.resolve(&f.value, block).unwrap();
            let s = |r: Range<usize>| String::from_utf8(fields.bytes[r].to_vec()).unwrap();
            (s(n), s(v))
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// RFC 7541 C.4: three requests on one connection, Huffman-coded, the table in use.
#[test]
fn rfc7541_requests_with_huffman() {
    let mut d = Decoder::new(4096);
    let base = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")];
    assert_eq!(decoded(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), pairs(&base));
    assert_eq!(d.size, 57);
    let second = [&base[..], &[("cache-control", "no-cache")]].concat();
    assert_eq!(decoded(&mut d, &hex("8286 84be 5886 a8eb 1064 9cbf")), pairs(&second));
    assert_eq!(d.size, 110);
    let third = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ];
    let block = hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf");
    assert_eq!(decoded(&mut d, &block), pairs(&third));
    assert_eq!((d.table.len(), d.size), (3, 164));
}

#[test]
fn a_huffman_value_nothing_needs_is_left_coded_until_asked() {
    // Literal without indexing, name `:path` (index 4), Huffman value "/sample/path".
    let mut value = Vec::new();
    httlib_huffman::encode(b"/sample/path", &mut value).unwrap();
    let mut block = vec![0x04];
    put_integer(value.len(), 7, 0x80, &mut block);
    block.extend(&value);
    let mut fields = Fields::default();
    Decoder::new(4096).decode(&block, &mut fields).unwrap();
    assert!(matches!(fields.list[0].value, Piece::Huffman(_)));
    let field = fields.list[0].clone();
    let r = fields.resolve(&field.value, &block).unwrap();
    assert_eq!(&fields.bytes[r], b"/sample/path");
}

#[test]
fn refused_authorities_are_seen_however_they_are_sent() {
    let path = b"/var/run/nodeagent/socket";
    let mut coded = Vec::new();
    httlib_huffman::encode(path, &mut coded).unwrap();
    for (huffman, first) in [(false, 0x41u8), (true, 0x41), (false, 0x01), (true, 0x11)] {
        let mut block = vec![first];
        let s: &[u8] = if huffman { &coded } else { path };
        put_integer(s.len(), 7, if huffman { 0x80 } else { 0 }, &mut block);
        block.extend(s);
        let mut d = Decoder::new(4096);
        let mut fields = Fields::default();
        d.decode(&block, &mut fields).unwrap();
        assert!(fields.refused_authority, "{first:#x} huffman={huffman}");
        // Referred to again from the dynamic table (when it was indexed).
        if first == 0x41 {
            d.decode(&[0x80 | 62], &mut fields).unwrap();
            assert!(fields.refused_authority);
        }
    }
    let mut fields = Fields::default();
    Decoder::new(4096).decode(&[0x81], &mut fields).unwrap();
    assert!(fields.refused_authority, "the static table's empty :authority");
}

#[test]
fn malformed_blocks_are_errors_not_panics() {
    let mut fields = Fields::default();
    for (block, error) in [
        (vec![0x80], HpackError::Index(0)),
        (vec![0xbe], HpackError::Index(62)),
        (vec![0x7f], HpackError::Integer),
        (vec![0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], HpackError::Integer),
        (vec![0x04, 0x05, b'/'], HpackError::StringLength),
        (vec![0x3f, 0xe2, 0x1f], HpackError::TableSize(4097)),
        (vec![0x44, 0x81, 0xff], HpackError::Huffman),
    ] {
        assert_eq!(Decoder::new(4096).decode(&block, &mut fields), Err(error), "{block:x?}");
    }
    // A bomb: small references to one large entry.
    let mut d = Decoder::new(4096);
    let mut block = vec![0x40, 0x01, b'x'];
    put_integer(4000, 7, 0, &mut block);
    block.extend(std::iter::repeat_n(b'y', 4000));
    block.extend(std::iter::repeat_n(0x80 | 62, 100));
    assert_eq!(d.decode(&block, &mut fields), Err(HpackError::ListTooLarge));
}

#[test]
fn an_entry_larger_than_the_table_empties_it() {
    let mut d = Decoder::new(100);
    let mut fields = Fields::default();
    d.decode(&[0x40, 0x01, b'a', 0x01, b'b'], &mut fields).unwrap();
    assert_eq!(d.table.len(), 1);
    let mut block = vec![0x40, 0x01, b'c'];
    put_integer(80, 7, 0, &mut block);
    block.extend([b'v'; 80]);
    d.decode(&block, &mut fields).unwrap();
    assert_eq!((d.table.len(), d.size), (0, 0));
    assert_eq!(fields.list.len(), 1, "the field itself is still decoded");
}

#[derive(Debug, Clone)]
enum Rep {
    /// A new field: representation (0x40 indexed, 0x00 without, 0x10 never), Huffman or not.
    Literal { first: u8, huffman: bool, name: Vec<u8>, value: Vec<u8> },
    /// The n-th newest dynamic entry (taken modulo what the table holds).
    Indexed(usize),
    /// A static entry.
    Static(usize),
}

fn rep() -> impl Strategy<Value = Rep> {
    prop_oneof![
        (
            prop_oneof![Just(0x40u8), Just(0x00), Just(0x10)],
            any::<bool>(),
            "[a-z-]{1,12}",
            proptest::collection::vec(any::<u8>(), 0..60)
        )
            .prop_map(|(first, huffman, name, value)| Rep::Literal {
                first,
                huffman,
                name: name.into_bytes(),
                value
            }),
        (0usize..10).prop_map(Rep::Indexed),
        (1usize..=61).prop_map(Rep::Static),
    ]
}

proptest! {
    /// Ours against an independent decoder (loona-hpack) on the same blocks.
    #[test]
    fn decodes_as_another_decoder_does(blocks in proptest::collection::vec(proptest::collection::vec(rep(), 0..8), 1..6)) {
        let mut ours = Decoder::new(4096);
        let mut theirs = loona_hpack::Decoder::new();
        for reps in blocks {
            // Dynamic references are drawn among the entries there before the block (the
            // block's own insertions shift them, and both decoders must agree on that).
            let before = ours.table.len();
            let mut block = Vec::new();
            for rep in reps {
                match rep {
                    Rep::Literal { first, huffman, name, value } => {
                        block.push(first);
                        for s in [&name, &value] {
                            if huffman {
                                let mut coded = Vec::new();
                                httlib_huffman::encode(s, &mut coded).unwrap();
                                put_integer(coded.len(), 7, 0x80, &mut block);
                                block.extend(coded);
                            } else {
                                put_integer(s.len(), 7, 0, &mut block);
                                block.extend(s);
                            }
                        }
                    }
                    Rep::Indexed(n) if before > 0 => put_integer(62 + n % before, 7, 0x80, &mut block),
                    Rep::Indexed(_) => {}
                    Rep::Static(i) => put_integer(i, 7, 0x80, &mut block),
                }
            }
            let want = theirs.decode(&block);
            let mut fields = Fields::default();
            let got = ours.decode(&block, &mut fields);
            prop_assert_eq!(got.is_ok(), want.is_ok(), "{:?} / {:?}", got, want);
            let Ok(want) = want else { break };
            let list = fields.list.clone();
            let got: Vec<(Vec<u8>, Vec<u8>)> = list.iter().map(|f| {
                let n = fields.resolve(&f.name, &block).unwrap();
                let v = fields.resolve(&f.value, &block).unwrap();
                (fields.bytes[n].to_vec(), fields.bytes[v].to_vec())
            }).collect();
            prop_assert_eq!(got, want);
        }
    }
}
